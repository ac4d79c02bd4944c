//! Reading: single objects and lists — `conditions`, `orderBy`, `fields` projections, and
//! `page`/`pageSize` or forward-only paging with a `Link` header.

use std::cmp::Ordering;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::http::{ApiError, SimRequest, bad_request, json_response};
use super::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Shared, conditions};

/// A child collection a list can be filtered on with `childConditions` (e.g. a contact's
/// `communicationItems`, whose items are `ContactCommunicationItem`s).
#[derive(Debug, Clone, Copy)]
pub(super) struct ChildSpec {
    pub(super) field: &'static str,
    pub(super) schema: &'static str,
}

impl Shared {
    pub(super) fn single(&self, req: &SimRequest, schema: &str, item: Value) -> Result<Response, ApiError> {
        let fields = self.parse_fields(req, schema)?;
        let item = match &fields {
            Some(f) => project(&item, f),
            None => item,
        };
        Ok(json_response(StatusCode::OK, &item))
    }

    pub(super) fn resolve_field(&self, schema: &str, path: &str) -> Result<Vec<String>, String> {
        if let Some(p) = self.schemas.lookup_property(schema, path) {
            return Ok(p.canonical_path);
        }
        // `_info` is a free-form string map: `_info/lastUpdated`, `_info/updatedBy`, ….
        if let Some((head, rest)) = path.split_once('/')
            && head.eq_ignore_ascii_case("_info")
            && !rest.is_empty()
            && !rest.contains('/')
            && self.schemas.lookup_property(schema, "_info").is_some()
        {
            return Ok(vec!["_info".to_string(), rest.to_string()]);
        }
        if let Some((head, _)) = path.split_once('/')
            && self.schemas.lookup_property(schema, head).is_some_and(|p| p.type_name.as_deref() == Some("array"))
        {
            return Err(format!("{head} is a child collection of {schema}: filter it with childConditions"));
        }
        // Audit fields live in `_info` but are queried as top-level fields.
        for pseudo in ["lastUpdated", "dateEntered", "enteredBy", "updatedBy"] {
            if pseudo.eq_ignore_ascii_case(path) {
                return Ok(vec!["_info".to_string(), pseudo.to_string()]);
            }
        }
        Err(format!("unknown field {path:?} for {schema}"))
    }

    pub(super) fn parse_fields(&self, req: &SimRequest, schema: &str) -> Result<Option<Vec<Vec<String>>>, ApiError> {
        let Some(fields) = req.param("fields") else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for f in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            let path = self.resolve_field(schema, f).map_err(|e| bad_request(&format!("fields: {e}")))?;
            out.push(path);
        }
        Ok(Some(out))
    }

    pub(super) fn list(&self, req: &SimRequest, schema: &str, items: Vec<Value>, count_only: bool) -> Result<Response, ApiError> {
        self.list_with_children(req, schema, items, count_only, None)
    }

    /// Resolves a `childConditions` field: `{child}/{property of the item schema}`.
    fn resolve_child_field(&self, child: ChildSpec, path: &str) -> Result<Vec<String>, String> {
        let rest = path
            .split_once('/')
            .filter(|(head, _)| head.eq_ignore_ascii_case(child.field))
            .map(|(_, rest)| rest)
            .ok_or_else(|| format!("childConditions fields must start with {}/, got {path:?}", child.field))?;
        let p = self.schemas.lookup_property(child.schema, rest).ok_or_else(|| format!("unknown field {path:?}"))?;
        Ok(std::iter::once(child.field.to_string()).chain(p.canonical_path).collect())
    }

    /// [`list`](Self::list) for a resource with a child collection `childConditions` may filter
    /// on. An item matches when one element of the collection satisfies the whole expression.
    pub(super) fn list_with_children(
        &self,
        req: &SimRequest,
        schema: &str,
        mut items: Vec<Value>,
        count_only: bool,
        children: Option<ChildSpec>,
    ) -> Result<Response, ApiError> {
        if req.param("customFieldConditions").is_some_and(|v| !v.trim().is_empty()) {
            return Err(bad_request("customFieldConditions is not supported by the simulator"));
        }
        if let Some(text) = req.param("childConditions").filter(|c| !c.trim().is_empty()) {
            let Some(child) = children else {
                return Err(bad_request(&format!("childConditions is not supported for {schema} by the simulator")));
            };
            let cond = conditions::parse(&text, &|f| self.resolve_child_field(child, f))
                .map_err(|e| bad_request(&format!("childConditions: {e}")))?;
            items.retain(|item| {
                item.get(child.field)
                    .and_then(Value::as_array)
                    .is_some_and(|elements| elements.iter().any(|e| cond.matches(&json!({ child.field: e }))))
            });
        }
        if let Some(text) = req.param("conditions").filter(|c| !c.trim().is_empty()) {
            let cond =
                conditions::parse(&text, &|f| self.resolve_field(schema, f)).map_err(|e| bad_request(&format!("conditions: {e}")))?;
            items.retain(|item| cond.matches(item));
        }
        if count_only {
            return Ok(json_response(StatusCode::OK, &json!({"count": items.len()})));
        }

        let page_size = match req.param("pageSize") {
            None => DEFAULT_PAGE_SIZE,
            Some(s) => match s.trim().parse::<usize>() {
                Ok(0) | Err(_) => {
                    return Err(bad_request(&format!("pageSize must be a positive integer, got {s:?}")));
                }
                Ok(n) => n.min(MAX_PAGE_SIZE),
            },
        };
        let forward_only = req.header("pagination-type").is_some_and(|v| v.trim().eq_ignore_ascii_case("forward-only"));

        if forward_only {
            // Forward-only paging walks ids upwards; `pageId` is the last id already seen.
            let after = match req.param("pageId") {
                None => i64::MIN,
                Some(s) => s.trim().parse::<i64>().map_err(|_| bad_request(&format!("pageId must be an integer, got {s:?}")))?,
            };
            items.sort_by_key(|v| v.get("id").and_then(Value::as_i64).unwrap_or(i64::MIN));
            items.retain(|v| v.get("id").and_then(Value::as_i64).unwrap_or(i64::MIN) > after);
            let more = items.len() > page_size;
            items.truncate(page_size);
            let last_id = items.last().and_then(|v| v.get("id")).and_then(Value::as_i64);
            let mut links = Vec::new();
            if let (true, Some(last)) = (more, last_id) {
                links.push((self.page_url(req, &[("pageId", last.to_string())], &["page", "pageId"]), "next"));
            }
            return self.page_response(req, schema, items, &links);
        }

        if let Some(order) = req.param("orderBy").filter(|o| !o.trim().is_empty()) {
            let keys = self.parse_order_by(schema, &order)?;
            items.sort_by(|a, b| {
                keys.iter()
                    .map(|(path, desc)| {
                        let ord = order_values(lookup(a, path), lookup(b, path));
                        if *desc { ord.reverse() } else { ord }
                    })
                    .find(|o| *o != Ordering::Equal)
                    .unwrap_or(Ordering::Equal)
            });
        } else {
            items.sort_by_key(|v| v.get("id").and_then(Value::as_i64).unwrap_or(i64::MIN));
        }

        let page = match req.param("page") {
            None => 1,
            Some(s) => match s.trim().parse::<usize>() {
                Ok(0) | Err(_) => {
                    return Err(bad_request(&format!("page must be a positive integer, got {s:?}")));
                }
                Ok(n) => n,
            },
        };
        let total = items.len();
        let last_page = total.div_ceil(page_size).max(1);
        let start = (page - 1).saturating_mul(page_size).min(total);
        let end = start.saturating_add(page_size).min(total);
        let page_items: Vec<Value> = items.drain(start..end).collect();

        let mut links = Vec::new();
        if last_page > 1 {
            let url = |p: usize| {
                self.page_url(req, &[("pageSize", page_size.to_string()), ("page", p.to_string())], &["page", "pageSize", "pageId"])
            };
            if page > 1 {
                links.push((url(page - 1), "prev"));
                links.push((url(1), "first"));
            }
            if page < last_page {
                links.push((url(page + 1), "next"));
                links.push((url(last_page), "last"));
            }
        }
        self.page_response(req, schema, page_items, &links)
    }

    pub(super) fn page_response(
        &self,
        req: &SimRequest,
        schema: &str,
        items: Vec<Value>,
        links: &[(String, &str)],
    ) -> Result<Response, ApiError> {
        let fields = self.parse_fields(req, schema)?;
        let items: Vec<Value> = match &fields {
            Some(f) => items.iter().map(|i| project(i, f)).collect(),
            None => items,
        };
        let mut resp = json_response(StatusCode::OK, &Value::Array(items));
        if !links.is_empty() {
            let link = links.iter().map(|(url, rel)| format!("<{url}>; rel=\"{rel}\"")).collect::<Vec<_>>().join(", ");
            if let Ok(v) = HeaderValue::from_str(&link) {
                resp.headers_mut().insert(header::LINK, v);
            }
        }
        Ok(resp)
    }

    /// The request URL with the paging parameters `drop` removed and `set` appended.
    pub(super) fn page_url(&self, req: &SimRequest, set: &[(&str, String)], drop: &[&str]) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in url::form_urlencoded::parse(req.query.as_bytes()) {
            if !drop.iter().any(|d| d.eq_ignore_ascii_case(&k)) {
                query.append_pair(&k, &v);
            }
        }
        for (k, v) in set {
            query.append_pair(k, v);
        }
        format!("http://{}{}?{}", self.addr, req.path, query.finish())
    }

    pub(super) fn parse_order_by(&self, schema: &str, order: &str) -> Result<Vec<(Vec<String>, bool)>, ApiError> {
        let mut keys = Vec::new();
        for part in order.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut words = part.split_whitespace();
            let field = words.next().unwrap_or("");
            let desc = match words.next().map(str::to_ascii_lowercase).as_deref() {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(other) => {
                    return Err(bad_request(&format!("orderBy: expected asc or desc, got {other:?}")));
                }
            };
            if words.next().is_some() {
                return Err(bad_request(&format!("orderBy: cannot parse {part:?}")));
            }
            let path = self.resolve_field(schema, field).map_err(|e| bad_request(&format!("orderBy: {e}")))?;
            keys.push((path, desc));
        }
        Ok(keys)
    }
}

pub(super) fn lookup<'a>(item: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(item, |v, key| v.get(key))
}

/// Keeps only the listed (nested) fields, like `fields=id,summary,status/name`.
pub(super) fn project(item: &Value, fields: &[Vec<String>]) -> Value {
    let mut out = Value::Object(Map::new());
    for path in fields {
        let Some(v) = lookup(item, path) else {
            continue;
        };
        let mut target = &mut out;
        for (i, key) in path.iter().enumerate() {
            let Value::Object(map) = target else {
                break;
            };
            if i + 1 == path.len() {
                map.insert(key.clone(), v.clone());
                break;
            }
            target = map.entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
        }
    }
    out
}

/// Sort order for `orderBy`: missing/null first, then booleans, numbers, strings
/// (case-insensitive, like SQL Server's default collation).
pub(super) fn order_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    pub(super) fn rank(v: Option<&Value>) -> u8 {
        match v {
            None | Some(Value::Null) => 0,
            Some(Value::Bool(_)) => 1,
            Some(Value::Number(_)) => 2,
            Some(Value::String(_)) => 3,
            Some(_) => 4,
        }
    }
    match (a, b) {
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.to_lowercase().cmp(&y.to_lowercase()),
        _ => rank(a).cmp(&rank(b)),
    }
}
