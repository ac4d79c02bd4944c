//! The query language and paging: `POST /{Entity}/query` (body), `GET /{Entity}/query?search=`,
//! `…/query/count` → `{"queryCount": N}`, and `GET /{Entity}/query/next?paging=&search=` (the
//! absolute `nextPageUrl`/`prevPageUrl` a client follows), plus `GET /{Entity}/{id}`.
//!
//! A query is `{"MaxRecords": 1..=500 (default 500), "IncludeFields": [...], "filter": [...]}`
//! (member names case-insensitive). Filter items are `{"op", "field", "value"[, "udf": true]}`
//! with `eq`, `noteq`, `gt`, `gte`, `lt`, `lte`, `beginsWith`, `endsWith`, `contains`, `exist`,
//! `notExist`, `in`, `notIn` (value an array), or groups `{"op": "and"|"or", "items": [...]}`,
//! nested; top-level items are ANDed. Field names are case-insensitive; an unknown field, an
//! unknown operator, no condition at all or more than 500 conditions answer
//! `500 {"errors": [...]}`. String comparisons are case-insensitive (SQL Server collation);
//! date-times compare as instants; `noteq`/`notIn` match a field without a value.
//!
//! Results come in id order. `IncludeFields` projects each item (`id` always included). Pages:
//! `{"items": [...], "pageDetails": {"count", "requestCount", "prevPageUrl", "nextPageUrl"}}`;
//! the page URLs carry `paging={"pageSize":N,"lastId":ID}` and the original `search`.

use std::cmp::Ordering;

use serde_json::{Map, Value, json};

use super::model::{Entity, EntitySpec, Kind, full_item, parse_datetime};
use super::server::{ApiError, QuerySource, Shared, SimRequest, ok};

/// Most records a page holds, and the default.
pub(crate) const MAX_RECORDS: usize = 500;
/// Most conditions one filter may hold.
pub(crate) const MAX_CONDITIONS: usize = 500;
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    NotEq,
    Gt,
    Gte,
    Lt,
    Lte,
    BeginsWith,
    EndsWith,
    Contains,
    Exist,
    NotExist,
    In,
    NotIn,
}

impl Op {
    fn parse(name: &str) -> Option<Op> {
        Some(match name.to_ascii_lowercase().as_str() {
            "eq" => Op::Eq,
            "noteq" => Op::NotEq,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "beginswith" => Op::BeginsWith,
            "endswith" => Op::EndsWith,
            "contains" => Op::Contains,
            "exist" => Op::Exist,
            "notexist" => Op::NotExist,
            "in" => Op::In,
            "notin" => Op::NotIn,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
enum Cond {
    Group { any: bool, items: Vec<Cond> },
    Leaf { field: String, udf: bool, op: Op, value: Value },
}

/// A parsed query.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    max_records: usize,
    include: Option<Vec<String>>,
    filter: Vec<Cond>,
}

fn member<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v).filter(|v| !v.is_null())
}

fn check_operand(field: &str, kind: Kind, value: &Value) -> Result<(), String> {
    let numeric = matches!(kind, Kind::Integer | Kind::Long | Kind::Double);
    let ok = match value {
        Value::Null => true,
        Value::Number(_) => numeric || kind == Kind::String,
        Value::String(s) => match kind {
            Kind::Integer | Kind::Long | Kind::Double => s.trim().parse::<f64>().is_ok(),
            Kind::DateTime => parse_datetime(s).is_some(),
            Kind::Boolean => s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false"),
            _ => true,
        },
        Value::Bool(_) => kind == Kind::Boolean || (numeric && field.starts_with("is")),
        _ => false,
    };
    if ok { Ok(()) } else { Err(format!("{field}: the value {value} is not valid for a {} field.", kind.data_type())) }
}

fn parse_cond(spec: &EntitySpec, item: &Value, depth: usize, leaves: &mut usize) -> Result<Cond, String> {
    if depth > MAX_DEPTH {
        return Err(format!("The filter is nested more than {MAX_DEPTH} levels deep."));
    }
    let obj = item.as_object().ok_or_else(|| format!("A filter item must be an object, got {item}."))?;
    let op_name = member(obj, "op").and_then(Value::as_str).ok_or("Every filter item needs an 'op'.")?;
    if op_name.eq_ignore_ascii_case("and") || op_name.eq_ignore_ascii_case("or") {
        let items = member(obj, "items").and_then(Value::as_array).filter(|i| !i.is_empty());
        let items = items.ok_or_else(|| format!("The '{op_name}' group needs a non-empty 'items' array."))?;
        let items = items.iter().map(|i| parse_cond(spec, i, depth + 1, leaves)).collect::<Result<Vec<_>, _>>()?;
        return Ok(Cond::Group { any: op_name.eq_ignore_ascii_case("or"), items });
    }
    let op = Op::parse(op_name).ok_or_else(|| format!("'{op_name}' is not a valid filter operator."))?;
    let field_name = member(obj, "field").and_then(Value::as_str).ok_or_else(|| format!("The '{op_name}' condition needs a 'field'."))?;
    let udf = member(obj, "udf").and_then(Value::as_bool).unwrap_or(false);
    let value = member(obj, "value").cloned().unwrap_or(Value::Null);
    *leaves += 1;
    let field = if udf {
        field_name.to_string()
    } else {
        let spec_field = spec.known_field(field_name)?;
        match (op, &value) {
            (Op::In | Op::NotIn, Value::Array(values)) => {
                values.iter().try_for_each(|v| check_operand(&spec_field.name, spec_field.kind, v))?
            }
            (Op::In | Op::NotIn, _) => return Err(format!("{}: the '{op_name}' operator needs an array value.", spec_field.name)),
            (Op::Exist | Op::NotExist, _) => {}
            (_, Value::Null) => return Err(format!("{}: the '{op_name}' condition needs a value.", spec_field.name)),
            (_, v) => check_operand(&spec_field.name, spec_field.kind, v)?,
        }
        spec_field.name.clone()
    };
    Ok(Cond::Leaf { field, udf, op, value })
}

/// Parses a query's JSON against an entity's fields.
pub(crate) fn parse_query(spec: &EntitySpec, search: &Value) -> Result<Query, String> {
    let obj = search.as_object().ok_or("The query must be a JSON object.")?;
    for key in obj.keys() {
        if !["maxrecords", "includefields", "filter"].contains(&key.to_ascii_lowercase().as_str()) {
            return Err(format!("Unknown query member '{key}'."));
        }
    }
    let max_records = match member(obj, "MaxRecords") {
        None => MAX_RECORDS,
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=MAX_RECORDS).contains(n))
            .ok_or_else(|| format!("MaxRecords must be between 1 and {MAX_RECORDS}, got {v}."))?,
    };
    let include = match member(obj, "IncludeFields") {
        None => None,
        Some(v) => {
            let names = v.as_array().ok_or("IncludeFields must be an array of field names.")?;
            let mut fields = Vec::new();
            for name in names {
                let name = name.as_str().ok_or("IncludeFields must be an array of field names.")?;
                fields.push(spec.known_field(name)?.name.clone());
            }
            Some(fields)
        }
    };
    let items = member(obj, "filter").and_then(Value::as_array).filter(|f| !f.is_empty());
    let items = items.ok_or("The query needs a filter with at least one condition.")?;
    let mut leaves = 0;
    let filter = items.iter().map(|i| parse_cond(spec, i, 0, &mut leaves)).collect::<Result<Vec<_>, _>>()?;
    if leaves > MAX_CONDITIONS {
        return Err(format!("The filter has {leaves} conditions; at most {MAX_CONDITIONS} are allowed."));
    }
    Ok(Query { max_records, include, filter })
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_lowercase()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn compare(field: &Value, operand: &Value) -> Option<Ordering> {
    if field.is_null() || operand.is_null() {
        return None;
    }
    if matches!(field, Value::Number(_) | Value::Bool(_)) {
        return as_number(field)?.partial_cmp(&as_number(operand)?);
    }
    let (a, b) = (field.as_str()?, as_text(operand)?);
    if let (Some(x), Some(y)) = (parse_datetime(a), parse_datetime(&b)) {
        return Some(x.cmp(&y));
    }
    Some(a.to_lowercase().cmp(&b))
}

fn equals(field: &Value, operand: &Value) -> bool {
    if operand.is_null() {
        return field.is_null();
    }
    compare(field, operand) == Some(Ordering::Equal)
}

fn field_value(item: &Value, field: &str, udf: bool) -> Value {
    if udf {
        return item
            .get("userDefinedFields")
            .and_then(Value::as_array)
            .and_then(|udfs| udfs.iter().find(|u| u.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(field))))
            .and_then(|u| u.get("value").cloned())
            .unwrap_or(Value::Null);
    }
    item.get(field).cloned().unwrap_or(Value::Null)
}

impl Cond {
    fn matches(&self, item: &Value) -> bool {
        match self {
            Cond::Group { any: true, items } => items.iter().any(|c| c.matches(item)),
            Cond::Group { any: false, items } => items.iter().all(|c| c.matches(item)),
            Cond::Leaf { field, udf, op, value } => {
                let actual = field_value(item, field, *udf);
                let text = || as_text(&actual);
                let needle = || as_text(value).unwrap_or_default();
                let in_list = || value.as_array().is_some_and(|vs| vs.iter().any(|v| equals(&actual, v)));
                match op {
                    Op::Eq => equals(&actual, value),
                    Op::NotEq => !equals(&actual, value),
                    Op::Gt => compare(&actual, value) == Some(Ordering::Greater),
                    Op::Gte => matches!(compare(&actual, value), Some(Ordering::Greater | Ordering::Equal)),
                    Op::Lt => compare(&actual, value) == Some(Ordering::Less),
                    Op::Lte => matches!(compare(&actual, value), Some(Ordering::Less | Ordering::Equal)),
                    Op::BeginsWith => text().is_some_and(|t| t.starts_with(&needle())),
                    Op::EndsWith => text().is_some_and(|t| t.ends_with(&needle())),
                    Op::Contains => text().is_some_and(|t| t.contains(&needle())),
                    Op::Exist => !actual.is_null() && actual != Value::String(String::new()),
                    Op::NotExist => actual.is_null() || actual == Value::String(String::new()),
                    Op::In => in_list(),
                    Op::NotIn => !in_list(),
                }
            }
        }
    }
}

impl Query {
    pub(crate) fn matches(&self, item: &Value) -> bool {
        self.filter.iter().all(|c| c.matches(item))
    }

    fn project(&self, item: Value) -> Value {
        let Some(include) = &self.include else { return item };
        let mut out = Map::new();
        out.insert("id".into(), item.get("id").cloned().unwrap_or(Value::Null));
        for name in include {
            out.insert(name.clone(), item.get(name).cloned().unwrap_or(Value::Null));
        }
        Value::Object(out)
    }
}

fn parse_param(req: &SimRequest, name: &str) -> Result<Value, ApiError> {
    let raw = req
        .param(name)
        .ok_or_else(|| ApiError::new(axum::http::StatusCode::BAD_REQUEST, format!("The '{name}' parameter is required.")))?;
    serde_json::from_str(&raw)
        .map_err(|e| ApiError::new(axum::http::StatusCode::BAD_REQUEST, format!("The '{name}' parameter is not valid JSON: {e}")))
}

fn id_of(item: &Value) -> i64 {
    item.get("id").and_then(Value::as_i64).unwrap_or(0)
}

impl Shared {
    /// Every stored entity of a kind, in its API shape, in id order.
    fn items(&self, entity: Entity) -> Vec<Value> {
        let spec = self.specs.of(entity);
        let state = self.lock();
        let source = match entity {
            Entity::Tickets => &state.tickets,
            Entity::TicketNotes => &state.notes,
            Entity::Companies => &state.directory.companies,
            Entity::Contacts => &state.directory.contacts,
        };
        source.values().map(|m| full_item(spec, m)).collect()
    }

    /// `GET /{Entity}/{id}`: the item, or `null`.
    pub(crate) fn get_one(&self, entity: Entity, id: i64) -> Value {
        self.items(entity).into_iter().find(|i| id_of(i) == id).unwrap_or(Value::Null)
    }

    fn page_url(&self, entity: Entity, page_size: usize, last_id: Option<i64>, search: &Value) -> String {
        let paging = json!({"pageSize": page_size, "lastId": last_id}).to_string();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("paging", &paging)
            .append_pair("search", &search.to_string())
            .finish();
        format!("{}/{}/query/next?{query}", self.api_root(), entity.url_name())
    }

    /// The query routes.
    pub(crate) fn query(
        &self,
        entity: Entity,
        source: QuerySource,
        req: &SimRequest,
        count_only: bool,
    ) -> Result<axum::response::Response, ApiError> {
        let (search, paging) = match source {
            QuerySource::Body => (req.json()?, None),
            QuerySource::Search => (parse_param(req, "search")?, None),
            QuerySource::Next => (parse_param(req, "search")?, Some(parse_param(req, "paging")?)),
        };
        let query = parse_query(self.specs.of(entity), &search).map_err(ApiError::invalid)?;
        let matching: Vec<Value> = self.items(entity).into_iter().filter(|i| query.matches(i)).collect();
        if count_only {
            return ok(&json!({"queryCount": matching.len()}));
        }
        let page_size = paging
            .as_ref()
            .and_then(|p| p.get("pageSize"))
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=MAX_RECORDS).contains(n))
            .unwrap_or(query.max_records);
        let after = paging.as_ref().and_then(|p| p.get("lastId")).and_then(Value::as_i64);
        let start = after.map_or(0, |last| matching.iter().position(|i| id_of(i) > last).unwrap_or(matching.len()));
        let end = (start + page_size).min(matching.len());
        let next = (end < matching.len()).then(|| self.page_url(entity, page_size, matching.get(end - 1).map(id_of), &search));
        let prev = (start > 0).then(|| {
            let prev_start = start.saturating_sub(page_size);
            let last = prev_start.checked_sub(1).and_then(|i| matching.get(i)).map(id_of);
            self.page_url(entity, page_size, last, &search)
        });
        let items: Vec<Value> = matching[start..end].iter().cloned().map(|i| query.project(i)).collect();
        ok(&json!({
            "items": items,
            "pageDetails": {"count": items.len(), "requestCount": page_size, "prevPageUrl": prev, "nextPageUrl": next},
        }))
    }
}
