//! CSV as seatkeeper writes it (RFC 4180, CRLF line ends, a header row): the attachments of
//! notification emails and the console's seat export. A field that starts like a formula
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
}
