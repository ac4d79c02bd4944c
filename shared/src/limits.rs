//! Size limits: every caller-supplied string and list the config API stores, and the bounds that
//! keep what Vigil writes itself (alerts, their triage, group keys) inside DynamoDB's 400 KB item
//! limit and Secrets Manager's 64 KB secret limit. The README's "Limits" table lists the same
//! numbers; change both together.
//!
//! Text limits count characters (Unicode scalar values), so a limit of `n` characters is at most
//! `4 n` bytes. Where only bytes matter (conditions, a whole policy, an alert) the limit is in
//! bytes of the JSON form. A value over its limit is refused with a [`LimitError`] that names the
//! field, e.g. `reason: at most 1000 characters`; the services answer it as `AdminError::Invalid`
//! (HTTP 422).

use crate::destination::DestinationCredentials;
use crate::policy::condition::Condition;
use serde_json::Value;

/// A tenant's display name.
pub const TENANT_NAME_CHARS: usize = 256;
/// Mail domains of a tenant (registration and policy context).
pub const DOMAINS_MAX: usize = 500;
/// One domain name (DNS allows 253).
pub const DOMAIN_CHARS: usize = 253;
/// Break-glass accounts of a tenant.
pub const BREAK_GLASS_ACCOUNTS_MAX: usize = 50;
/// A user principal name or user: break-glass accounts, policy scope users, suppression user,
/// triage assignee. (Microsoft allows 113 for a UPN; e-mail addresses reach 254.)
pub const USER_CHARS: usize = 256;
/// A Microsoft 365 app's client id.
pub const M365_CLIENT_ID_CHARS: usize = 256;
/// A Microsoft 365 app's client secret (Entra secrets are about 40; Secrets Manager takes 64 KB).
pub const CLIENT_SECRET_CHARS: usize = 1024;
/// Each credential field of a destination (keys, user names, secrets, integration codes).
pub const CREDENTIAL_FIELD_CHARS: usize = 256;
/// Longest URL kept as a credential (a chat webhook URL that carries its own signature).
pub const CREDENTIAL_URL_CHARS: usize = 2048;
/// Most recipients of an e-mail destination (SES takes at most 50 per message).
pub const EMAIL_RECIPIENTS_MAX: usize = 50;
/// Longest subject prefix of an e-mail destination.
pub const SUBJECT_PREFIX_CHARS: usize = 50;
/// Longest grace period of a replaced webhook signing secret (hours).
pub const ROTATION_GRACE_HOURS_MAX: u32 = 168;
/// A reference to something in a PSA (a company, board, queue, priority or status id).
pub const PSA_REFERENCE_CHARS: usize = 64;
/// A destination's name.
pub const DESTINATION_NAME_CHARS: usize = 100;
/// Destinations one MSP may have.
pub const DESTINATIONS_MAX: usize = 50;
/// Entries of each routing list of a destination (categories, policies, tenants).
pub const ROUTING_LIST_MAX: usize = 1000;
/// The largest `requests_per_hour` share a destination may give Vigil (Autotask allows 10,000
/// per database and hour in all).
pub const REQUESTS_PER_HOUR_MAX: u32 = 10_000;
/// How far ahead (hours) an Autotask ticket's due date may be set: a year.
pub const DUE_IN_HOURS_MAX: u32 = 24 * 366;
/// The search text of a PSA lookup.
pub const LOOKUP_SEARCH_CHARS: usize = 100;

/// A policy's name.
pub const POLICY_NAME_CHARS: usize = 256;
/// A policy's description.
pub const POLICY_DESCRIPTION_CHARS: usize = 4000;
/// A policy's title template.
pub const POLICY_TITLE_CHARS: usize = 1000;
/// Facts of a policy.
pub const POLICY_FACTS_MAX: usize = 30;
/// A fact's name.
pub const FACT_NAME_CHARS: usize = 128;
/// A field path (facts, group_by, distinct, passthrough).
pub const FIELD_PATH_CHARS: usize = 256;
/// Field paths of one group_by.
pub const GROUP_BY_MAX: usize = 10;
/// Entries of each policy list: scope tenants and users (and their exclusions), record types,
/// operations, resolve operations.
pub const POLICY_LIST_MAX: usize = 100;
/// One operation name.
pub const OPERATION_CHARS: usize = 128;
/// A policy's conditions, as JSON.
pub const CONDITION_BYTES: usize = 32 * 1024;
/// Nodes (all, any, not, predicates) of one condition tree.
pub const CONDITION_NODES: usize = 500;
/// Values of one predicate (`in`, `domain_in`, `ip_in_cidr`, …).
pub const CONDITION_VALUES: usize = 1000;
/// A whole policy, as JSON: the backstop for multi-byte text at every other limit. Well under
/// DynamoDB's 400 KB item limit.
pub const POLICY_BYTES: usize = 160 * 1024;

/// A suppression's reason.
pub const SUPPRESSION_REASON_CHARS: usize = 1000;
/// A suppression's conditions, as JSON.
pub const SUPPRESSION_CONDITION_BYTES: usize = 16 * 1024;

/// A triage comment.
pub const COMMENT_CHARS: usize = 4000;
/// Triage comments an alert keeps (the newest).
pub const TRIAGE_COMMENTS_KEPT: usize = 100;
/// Total text of the triage comments an alert keeps, in bytes.
pub const TRIAGE_COMMENT_BYTES: usize = 32 * 1024;
/// Triage history entries an alert keeps (the newest).
pub const TRIAGE_HISTORY_KEPT: usize = 50;

/// A group key longer than this (bytes) is stored as a readable prefix and a SHA-256.
pub const GROUP_KEY_BYTES: usize = 256;
/// An alert's JSON form is shrunk to this before it is written, leaving room below DynamoDB's
/// 400 KB for attribute overhead.
pub const ALERT_BYTES: usize = 300 * 1024;

/// A value over its limit, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("{field}: at most {max} characters")]
    TooLong { field: String, max: usize },
    #[error("{field}: at most {max} entries")]
    TooMany { field: String, max: usize },
    #[error("{field}: at most {max} bytes")]
    TooLarge { field: String, max: usize },
    #[error("{field}: must not be blank")]
    Blank { field: String },
}

/// Refuses text of more than `max` characters.
///
/// # Errors
/// [`LimitError::TooLong`] naming `field`.
pub fn chars(field: &str, value: &str, max: usize) -> Result<(), LimitError> {
    // Counting stops one past the limit, so a 1 MB value costs no more than a short one.
    if value.chars().nth(max).is_some() { Err(LimitError::TooLong { field: field.to_owned(), max }) } else { Ok(()) }
}

/// Refuses a list of more than `max` entries.
///
/// # Errors
/// [`LimitError::TooMany`] naming `field`.
pub fn entries<T>(field: &str, values: &[T], max: usize) -> Result<(), LimitError> {
    if values.len() > max { Err(LimitError::TooMany { field: field.to_owned(), max }) } else { Ok(()) }
}

/// Refuses a list of more than `max_entries` entries or with an entry of more than `max_chars`
/// characters (named `field[i]`).
///
/// # Errors
/// The first limit exceeded.
pub fn list<S: AsRef<str>>(field: &str, values: &[S], max_entries: usize, max_chars: usize) -> Result<(), LimitError> {
    entries(field, values, max_entries)?;
    values.iter().enumerate().try_for_each(|(i, v)| chars(&format!("{field}[{i}]"), v.as_ref(), max_chars))
}

/// Refuses JSON of more than `max` bytes.
///
/// # Errors
/// [`LimitError::TooLarge`] naming `field`.
pub fn json_bytes<T: serde::Serialize + ?Sized>(field: &str, value: &T, max: usize) -> Result<(), LimitError> {
    let size = serde_json::to_vec(value).map_or(usize::MAX, |v| v.len());
    if size > max { Err(LimitError::TooLarge { field: field.to_owned(), max }) } else { Ok(()) }
}

/// Refuses conditions of more than `max_bytes` bytes of JSON, more than [`CONDITION_NODES`]
/// nodes, or a predicate with more than [`CONDITION_VALUES`] values.
///
/// # Errors
/// The first limit exceeded, naming the place (e.g. `conditions.all[2].value`).
pub fn condition(field: &str, condition: &Condition, max_bytes: usize) -> Result<(), LimitError> {
    let json = condition.to_json();
    json_bytes(field, &json, max_bytes)?;
    let mut nodes = 0;
    walk(field, &json, &mut nodes)?;
    if nodes > CONDITION_NODES {
        return Err(LimitError::TooMany { field: format!("{field} (nodes)"), max: CONDITION_NODES });
    }
    Ok(())
}

fn walk(at: &str, node: &Value, nodes: &mut usize) -> Result<(), LimitError> {
    *nodes += 1;
    let Value::Object(object) = node else { return Ok(()) };
    for key in ["all", "any"] {
        if let Some(Value::Array(items)) = object.get(key) {
            for (i, item) in items.iter().enumerate() {
                walk(&format!("{at}.{key}[{i}]"), item, nodes)?;
            }
        }
    }
    if let Some(inner) = object.get("not") {
        walk(&format!("{at}.not"), inner, nodes)?;
    }
    if let Some(Value::Array(values)) = object.get("value") {
        entries(&format!("{at}.value"), values, CONDITION_VALUES)?;
    }
    Ok(())
}

/// Checks each credential field of a destination against [`CREDENTIAL_FIELD_CHARS`] (named
/// `credentials.<field>`), and that none is blank.
///
/// # Errors
/// The first field over its limit or blank.
pub fn destination_credentials(credentials: &DestinationCredentials) -> Result<(), LimitError> {
    let fields: Vec<(&str, &str, usize)> = match credentials {
        DestinationCredentials::ConnectWise { company_id, public_key, private_key, client_id } => vec![
            ("company_id", company_id, CREDENTIAL_FIELD_CHARS),
            ("public_key", public_key, CREDENTIAL_FIELD_CHARS),
            ("private_key", private_key.expose(), CREDENTIAL_FIELD_CHARS),
            ("client_id", client_id, CREDENTIAL_FIELD_CHARS),
        ],
        DestinationCredentials::Autotask { username, secret, integration_code } => vec![
            ("username", username, CREDENTIAL_FIELD_CHARS),
            ("secret", secret.expose(), CREDENTIAL_FIELD_CHARS),
            ("integration_code", integration_code.expose(), CREDENTIAL_FIELD_CHARS),
        ],
        DestinationCredentials::HaloPsa { client_id, client_secret } => {
            vec![("client_id", client_id, CREDENTIAL_FIELD_CHARS), ("client_secret", client_secret.expose(), CREDENTIAL_FIELD_CHARS)]
        }
        DestinationCredentials::Tigerpaw { public_key, private_key } => {
            vec![("public_key", public_key, CREDENTIAL_FIELD_CHARS), ("private_key", private_key.expose(), CREDENTIAL_FIELD_CHARS)]
        }
        DestinationCredentials::Teams { workflow_url } => vec![("workflow_url", workflow_url.expose(), CREDENTIAL_URL_CHARS)],
        DestinationCredentials::Slack { webhook_url } => vec![("webhook_url", webhook_url.expose(), CREDENTIAL_URL_CHARS)],
        DestinationCredentials::Webhook { secret, previous_secret, .. } => {
            let mut fields = vec![("secret", secret.expose(), CREDENTIAL_FIELD_CHARS)];
            if let Some(previous) = previous_secret {
                fields.push(("previous_secret", previous.expose(), CREDENTIAL_FIELD_CHARS));
            }
            fields
        }
    };
    for (name, value, max) in fields {
        let field = format!("credentials.{name}");
        if value.trim().is_empty() {
            return Err(LimitError::Blank { field });
        }
        chars(&field, value, max)?;
    }
    Ok(())
}

/// `text` cut to at most `max_bytes` bytes at a character boundary.
#[must_use]
pub fn prefix(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A group key of at most [`GROUP_KEY_BYTES`] bytes: a longer key becomes a readable prefix,
/// `…#` and the hex SHA-256 of the whole key. The same key always gives the same bounded key,
/// so alert ids and trigger state stay deterministic.
#[must_use]
pub fn bounded_key(key: String) -> String {
    use sha2::Digest;
    if key.len() <= GROUP_KEY_BYTES {
        return key;
    }
    const MARKER: &str = "…#";
    let digest = hex::encode(sha2::Sha256::digest(key.as_bytes()));
    let head = prefix(&key, GROUP_KEY_BYTES - MARKER.len() - digest.len());
    format!("{head}{MARKER}{digest}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretString;

    #[test]
    fn a_value_over_its_limit_is_refused_naming_the_field() {
        assert_eq!(chars("reason", &"x".repeat(1000), 1000), Ok(()));
        assert_eq!(chars("reason", &"x".repeat(1001), 1000).unwrap_err().to_string(), "reason: at most 1000 characters");
        assert_eq!(chars("reason", &"é".repeat(1000), 1000), Ok(()), "characters, not bytes");
        let domains = vec!["contoso.com".to_owned(); 501];
        assert_eq!(list("domains", &domains, 500, 253).unwrap_err().to_string(), "domains: at most 500 entries");
        let long = vec!["a.b".to_owned(), "x".repeat(254)];
        assert_eq!(list("domains", &long, 500, 253).unwrap_err().to_string(), "domains[1]: at most 253 characters");
    }

    #[test]
    fn conditions_are_bounded_by_size_nodes_and_values_per_predicate() {
        let values: Vec<String> = (0..1001).map(|i| format!("d{i}.example")).collect();
        let wide = Condition::from_json(&serde_json::json!({"all": [{"field": "UserId", "op": "domain_in", "value": values}]})).unwrap();
        assert_eq!(condition("conditions", &wide, 1 << 20).unwrap_err().to_string(), "conditions.all[0].value: at most 1000 entries");
        assert_eq!(condition("conditions", &wide, 1024).unwrap_err().to_string(), "conditions: at most 1024 bytes");
        let many: Vec<Value> = (0..CONDITION_NODES).map(|_| serde_json::json!({"field": "UserId", "op": "exists"})).collect();
        let bushy = Condition::from_json(&serde_json::json!({"any": many})).unwrap();
        assert_eq!(condition("conditions", &bushy, 1 << 20).unwrap_err().to_string(), "conditions (nodes): at most 500 entries");
    }

    #[test]
    fn destination_credentials_are_bounded_and_required_each_by_name() {
        let credentials = |private: &str| DestinationCredentials::ConnectWise {
            company_id: "acme".into(),
            public_key: "pub".into(),
            private_key: SecretString::new(private),
            client_id: "cid".into(),
        };
        assert_eq!(destination_credentials(&credentials("k")), Ok(()));
        assert_eq!(
            destination_credentials(&credentials(&"k".repeat(257))).unwrap_err().to_string(),
            "credentials.private_key: at most 256 characters"
        );
        assert_eq!(destination_credentials(&credentials(" ")).unwrap_err().to_string(), "credentials.private_key: must not be blank");
    }

    #[test]
    fn a_long_group_key_becomes_a_readable_prefix_and_a_hash_of_the_whole_key() {
        let short = "alice@contoso.com".to_owned();
        assert_eq!(bounded_key(short.clone()), short);
        let at_limit = "a".repeat(GROUP_KEY_BYTES);
        assert_eq!(bounded_key(at_limit.clone()), at_limit);
        // 10 KB of multi-byte characters: no cut may land inside one.
        let long: String = "日本語ü".repeat(1000);
        let bounded = bounded_key(long.clone());
        assert!(bounded.len() <= GROUP_KEY_BYTES, "{} bytes", bounded.len());
        assert!(bounded.starts_with("日本語ü日本語ü"), "readable: {bounded}");
        let (_, digest) = bounded.rsplit_once("…#").unwrap();
        assert_eq!(digest.len(), 64);
        assert_eq!(bounded_key(long.clone()), bounded, "deterministic");
        let mut other = long;
        other.push('x');
        assert_ne!(bounded_key(other), bounded, "keys that share the prefix stay apart");
    }

    #[test]
    fn a_prefix_never_splits_a_character() {
        assert_eq!(prefix("ab€", 3), "ab");
        assert_eq!(prefix("ab€", 5), "ab€");
        assert_eq!(prefix("ab", 10), "ab");
    }
}
