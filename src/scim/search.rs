//! List requests (RFC 7644 §3.4.2, §3.4.3): the parameters of a `GET` on a resource type and
//! of a SearchRequest body, checked and turned into a [`ListQuery`] and a [`Projection`].

use serde_json::Value;

use super::filter::Filter;
use super::path::AttrPath;
use super::projection::Projection;
use super::Error;

/// URN of the SearchRequest message.
pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// What a list request asks of the store: which resources, which page, in which order.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    /// 1-based index of the first result.
    pub start_index: i64,
    /// Most results to return; 0 returns only the total.
    pub count: i64,
    /// `sortBy` and whether `sortOrder` is descending.
    pub sort: Option<(AttrPath, bool)>,
}

/// List parameters from a query string or a SearchRequest body.
pub struct ListParams {
    pub query: ListQuery,
    pub projection: Projection,
}

fn int_param(name: &str, v: &str) -> Result<i64, Error> {
    v.trim()
        .parse::<i64>()
        .map_err(|_| Error::invalid_value(format!("{name} must be an integer, got {v:?}")))
}

/// List parameters as the client wrote them.
#[derive(Default)]
struct RawParams {
    filter: Option<String>,
    start: Option<i64>,
    count: Option<i64>,
    attributes: Option<String>,
    excluded: Option<String>,
    sort_by: Option<String>,
    sort_order: Option<String>,
}

impl ListParams {
    fn build(raw: RawParams, max: usize) -> Result<ListParams, Error> {
        let filter = match raw
            .filter
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty())
        {
            Some(f) => Some(Filter::parse(f)?),
            None => None,
        };
        let descending = match raw.sort_order.as_deref().map(str::trim) {
            None | Some("") => false,
            Some(o) if o.eq_ignore_ascii_case("ascending") => false,
            Some(o) if o.eq_ignore_ascii_case("descending") => true,
            Some(o) => {
                return Err(Error::invalid_value(format!(
                    "sortOrder must be ascending or descending, got {o:?}"
                )))
            }
        };
        let sort = match raw
            .sort_by
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(p) => Some((
                AttrPath::parse(p)
                    .filter(|p| !p.is_whole_extension())
                    .ok_or_else(|| {
                        Error::invalid_value(format!("sortBy: {p:?} is not an attribute path"))
                    })?,
                descending,
            )),
        };
        let max = max as i64;
        Ok(ListParams {
            query: ListQuery {
                filter,
                start_index: raw.start.unwrap_or(1).max(1),
                count: raw.count.unwrap_or(max).clamp(0, max),
                sort,
            },
            projection: Projection::parse(raw.attributes.as_deref(), raw.excluded.as_deref())?,
        })
    }

    /// From a query string's pairs (`filter`, `startIndex`, `count`, `sortBy`, `sortOrder`,
    /// `attributes`, `excludedAttributes`; names compared without case).
    pub fn from_pairs(pairs: &[(String, String)], max: usize) -> Result<ListParams, Error> {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        let raw = RawParams {
            filter: get("filter"),
            start: get("startIndex")
                .map(|v| int_param("startIndex", &v))
                .transpose()?,
            count: get("count").map(|v| int_param("count", &v)).transpose()?,
            attributes: get("attributes"),
            excluded: get("excludedAttributes"),
            sort_by: get("sortBy"),
            sort_order: get("sortOrder"),
        };
        Self::build(raw, max)
    }

    /// Only the projection of a query string's pairs (`attributes`, `excludedAttributes`):
    /// what a request on one resource may ask.
    pub fn projection_of(pairs: &[(String, String)]) -> Result<Projection, Error> {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        Projection::parse(get("attributes"), get("excludedAttributes"))
    }

    /// From a SearchRequest body (RFC 7644 §3.4.3).
    pub fn from_search(body: &Value, max: usize) -> Result<ListParams, Error> {
        if !body.is_object() {
            return Err(Error::invalid_syntax(
                "a SearchRequest must be a JSON object",
            ));
        }
        let get = |k: &str| super::eval::get_ci(body, k);
        let text = |k: &str| -> Result<Option<String>, Error> {
            match get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Array(a)) => Ok(Some(
                    a.iter()
                        .map(|v| {
                            v.as_str().map(str::to_owned).ok_or_else(|| {
                                Error::invalid_value(format!("{k} must list strings"))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?
                        .join(","),
                )),
                Some(_) => Err(Error::invalid_value(format!("{k} has the wrong type"))),
            }
        };
        let int = |k: &str| -> Result<Option<i64>, Error> {
            match get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => n
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| Error::invalid_value(format!("{k} must be an integer"))),
                Some(Value::String(s)) => int_param(k, s).map(Some),
                Some(_) => Err(Error::invalid_value(format!("{k} must be an integer"))),
            }
        };
        let raw = RawParams {
            filter: text("filter")?,
            start: int("startIndex")?,
            count: int("count")?,
            attributes: text("attributes")?,
            excluded: text("excludedAttributes")?,
            sort_by: text("sortBy")?,
            sort_order: text("sortOrder")?,
        };
        Self::build(raw, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn a_query_string_gives_filter_page_and_order() {
        let p = ListParams::from_pairs(
            &pairs(&[
                ("Filter", "userName eq \"a\""),
                ("startIndex", "0"),
                ("count", "500"),
                ("sortBy", "name.familyName"),
                ("sortOrder", "Descending"),
            ]),
            100,
        )
        .unwrap();
        assert!(p.query.filter.is_some());
        assert_eq!(p.query.start_index, 1, "startIndex below 1 is read as 1");
        assert_eq!(p.query.count, 100, "count is capped at the maximum");
        let (path, descending) = p.query.sort.unwrap();
        assert_eq!(path.to_string(), "name.familyName");
        assert!(descending);
    }

    #[test]
    fn bad_parameters_are_scim_errors() {
        for q in [
            ("count", "ten"),
            ("sortOrder", "up"),
            ("filter", "userName eq"),
            (
                "sortBy",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            ),
        ] {
            let e = ListParams::from_pairs(&pairs(&[q]), 100).err();
            assert_eq!(e.map(|e| e.status), Some(400), "{q:?}");
        }
    }

    #[test]
    fn a_search_request_takes_lists_and_numbers_as_strings() {
        let p = ListParams::from_search(
            &json!({"schemas": [SEARCH_REQUEST], "attributes": ["userName", "emails"],
                    "startIndex": "3", "count": 2, "filter": ""}),
            100,
        )
        .unwrap();
        assert!(p.query.filter.is_none(), "an empty filter is no filter");
        assert_eq!((p.query.start_index, p.query.count), (3, 2));
        assert!(ListParams::from_search(&json!([1]), 100).is_err());
        assert!(ListParams::from_search(&json!({"count": true}), 100).is_err());
        assert!(ListParams::from_search(&json!({"attributes": [1]}), 100).is_err());
    }
}
