//! CSV as seatkeeper writes it (RFC 4180, CRLF line ends, a header row): the attachments of
//! notification emails and the console's seat export; and the one CSV it reads, a list of
//! people (`first_column`: the seat holders an admin carries over). A field that starts like a formula
//! (`= + - @`) is defused, so a spreadsheet never runs a provider-supplied value. (The true-up
//! export, numbers and dates only, is written by `capacity::true_up_csv`.)

use serde_json::Value;

fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The item's columns: the union of keys, in first-seen order.
fn columns(items: &[Value]) -> Vec<String> {
    let mut cols: Vec<String> = Vec::new();
    for i in items {
        if let Some(o) = i.as_object() {
            for k in o.keys() {
                if !cols.contains(k) {
                    cols.push(k.clone());
                }
            }
        }
    }
    cols
}

/// One CSV field: quoted when needed; a leading `= + - @` is defused so a spreadsheet never
/// runs a provider-supplied value as a formula.
fn field(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_owned()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

/// Every item as CSV (RFC 4180, CRLF line ends), with a header row of its keys.
pub fn items(items: &[Value]) -> String {
    let cols = columns(items);
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|i| cols.iter().map(|c| s(i, c)).collect())
        .collect();
    table(&cols, &rows)
}

/// A table as CSV (RFC 4180, CRLF line ends), with its header row.
pub fn table(headers: &[String], rows: &[Vec<String>]) -> String {
    let line = |fields: &[String]| {
        let mut l = fields
            .iter()
            .map(|f| field(f))
            .collect::<Vec<_>>()
            .join(",");
        l.push_str("\r\n");
        l
    };
    let mut out = line(headers);
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

/// Header cells that name a column of user references (a first row holding one is a header).
const REFERENCE_HEADERS: [&str; 7] = [
    "user",
    "id",
    "username",
    "externalid",
    "email",
    "reference",
    "mail",
];

/// The first field of each record of a CSV list of people (RFC 4180: quoted fields may hold
/// commas, doubled quotes and line breaks), without empty ones and without a header row
/// naming the column (`user`, `userName`, `email`, ...).
pub fn first_column(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.trim_start_matches('\u{feff}').chars().peekable();
    let mut first_record = true;
    while chars.peek().is_some() {
        // One record: its first field, then skip to the record's end.
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => break,
                    c => field.push(c),
                }
            }
        }
        let mut in_quotes = false;
        for c in chars.by_ref() {
            match c {
                '"' => in_quotes = !in_quotes,
                '\n' if !in_quotes => break,
                ',' | ';' | '\t' if !in_quotes => {
                    // The rest of the record is other columns.
                    for c in chars.by_ref() {
                        match c {
                            '"' => in_quotes = !in_quotes,
                            '\n' if !in_quotes => break,
                            _ => {}
                        }
                    }
                    break;
                }
                c if !field.starts_with('"') && !in_quotes => field.push(c),
                _ => {}
            }
        }
        let value = field.trim().to_owned();
        let header =
            first_record && REFERENCE_HEADERS.contains(&value.to_ascii_lowercase().as_str());
        first_record = false;
        if !value.is_empty() && !header {
            out.push(value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let rows = vec![json!({"userName": "=HYPERLINK(\"x\")", "note": "a,b"})];
        assert_eq!(
            items(&rows),
            "userName,note\r\n\"'=HYPERLINK(\"\"x\"\")\",\"a,b\"\r\n"
        );
    }

    #[test]
    fn the_first_column_of_a_list_of_people_is_read_whatever_its_quoting() {
        let text = "\u{feff}userName,name\r\nana@example.com,Ana\r\n\"bo,\"\"b\"\"\",\"Bo, B\"\r\n\r\n  carl  \n\"multi\nline\",x\nlast";
        assert_eq!(
            first_column(text),
            ["ana@example.com", "bo,\"b\"", "carl", "multi\nline", "last"]
        );
        // Without a header row, the first row is a person.
        assert_eq!(first_column("dana\nerik\n"), ["dana", "erik"]);
    }
}
