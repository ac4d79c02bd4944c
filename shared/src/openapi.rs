//! OpenAPI schemas written by hand, for the types whose JSON form serde does not derive: a
//! write-only secret, an audit stream (written as its wire name), and a policy condition tree
//! (parsed by hand, so its grammar is stated here). Only built with the `openapi` feature (the config API's).

use crate::policy::condition::Condition;
use crate::secret::SecretString;
use utoipa::openapi::schema::{AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

impl PartialSchema for SecretString {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .write_only(Some(true))
            .description(Some("A secret: stored in Secrets Manager, never returned."))
            .into()
    }
}

impl ToSchema for SecretString {}

impl PartialSchema for crate::ids::AuditStream {
    fn schema() -> RefOr<Schema> {
        let names: Vec<&str> = crate::ids::AuditStream::all().into_iter().map(crate::ids::AuditStream::as_str).collect();
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(names))
            .description(Some("A Management Activity API content type, or Graph.AlertsV2 (Microsoft Graph security alerts)."))
            .into()
    }
}

impl ToSchema for crate::ids::AuditStream {}

/// The operators a predicate may use (the names [`Condition`] parses).
const OPERATORS: [&str; 16] = [
    "equals",
    "not_equals",
    "in",
    "contains",
    "starts_with",
    "ends_with",
    "glob",
    "regex",
    "ip_in_cidr",
    "domain_in",
    "domain_not_in",
    "gt",
    "gte",
    "lt",
    "lte",
    "exists",
];

fn conditions() -> ArrayBuilder {
    ArrayBuilder::new().items(Ref::from_schema_name("Condition"))
}

impl PartialSchema for Condition {
    fn schema() -> RefOr<Schema> {
        let all = ObjectBuilder::new()
            .property("all", conditions())
            .required("all")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        let any = ObjectBuilder::new()
            .property("any", conditions())
            .required("any")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        let not = ObjectBuilder::new()
            .property("not", Ref::from_schema_name("Condition"))
            .required("not")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        let predicate = ObjectBuilder::new()
            .property("field", ObjectBuilder::new().schema_type(Type::String).description(Some("A field path of the audit record")))
            .required("field")
            .property("op", ObjectBuilder::new().schema_type(Type::String).enum_values(Some(OPERATORS)))
            .required("op")
            .property("quantifier", ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["any", "all"])))
            .property("case_sensitive", ObjectBuilder::new().schema_type(Type::Boolean))
            .property("value", ObjectBuilder::new().schema_type(SchemaType::AnyValue))
            .property(
                "value_from",
                ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["tenant.domains", "tenant.break_glass_accounts"])),
            )
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        OneOfBuilder::new()
            .item(all)
            .item(any)
            .item(not)
            .item(predicate)
            .description(Some("A condition tree: all / any of conditions, not a condition, or a predicate on one field."))
            .into()
    }
}

impl ToSchema for Condition {}
