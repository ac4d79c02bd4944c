//! The demo's tenant-queue step: the console's alert queue filtered to Contoso reads Contoso's
//! own change index (the alerts table's GSI `by-tenant-change`, keyed
//! `MSP#{msp}#TENANT#{tenant}`), so a read of as many entries as Contoso has alerts returns all
//! of them whatever the MSP's other tenants wrote in between; the rival MSP's Contoso (step 16)
//! is another key. Then an upgrade: an alert written before the index existed is missing from
//! the queue until `vigil-admin index-alerts` ([`DynamoAlertStore::index_earlier_alerts`])
//! stamps it.

use crate::demo::{Api, CONTOSO, DemoError, DemoOutcome, fail};
use crate::stack::LocalStack;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use std::io::Write;
use vigil::aws::dynamodb::DynamoAlertStore;
use vigil::changes::{AlertSelection, ChangeQuery};
use vigil::ids::{MspId, TenantId};
use vigil::ports::AlertStore;

/// The ids of a `GET /v1/alerts` answer, in its order.
fn ids(page: &Value) -> Vec<String> {
    page["alerts"].as_array().into_iter().flatten().filter_map(|a| a["id"].as_str().map(str::to_owned)).collect()
}

async fn contoso_queue(api: &Api) -> Result<Vec<String>, DemoError> {
    Ok(ids(&api.send(reqwest::Method::GET, &format!("/v1/alerts?tenant={CONTOSO}&limit=100"), None).await?))
}

/// Step 28.
pub(crate) async fn tenant_queue_by_key(
    stack: &LocalStack,
    out: &mut dyn Write,
    outcome: &mut DemoOutcome,
    api: &Api,
) -> Result<(), DemoError> {
    let _ = writeln!(out, "\n28. Contoso's alert queue reads Contoso's own change index, not the MSP's filtered.");
    let everything = api.send(reqwest::Method::GET, "/v1/alerts?limit=100", None).await?;
    let of_contoso: Vec<String> = everything["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["tenant_id"] == CONTOSO)
        .filter_map(|a| a["id"].as_str().map(str::to_owned))
        .collect();
    let queue = contoso_queue(api).await?;
    let _ = writeln!(out, "   GET /v1/alerts → {} alerts, {} of them Contoso's", ids(&everything).len(), of_contoso.len());
    let _ = writeln!(out, "   GET /v1/alerts?tenant={CONTOSO} → {} alerts", queue.len());
    outcome.check(out, "the tenant's queue is exactly its alerts, newest change first", !queue.is_empty() && queue == of_contoso);

    // What the store looks at for that page: as many index entries as Contoso has alerts.
    let table = stack.provisioned.table_names["AlertsTable"].clone();
    let client = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let store = DynamoAlertStore::new(client.clone(), table.clone());
    let msp_id = MspId::parse("demo-msp").map_err(|e| fail(e.to_string()))?;
    let tenant = TenantId::parse(CONTOSO).map_err(|e| fail(e.to_string()))?;
    let n = of_contoso.len().max(1);
    let newest = ChangeQuery { newest_first: true, read: n, ..ChangeQuery::default() };
    let by_msp = store.alerts_by_change(&msp_id, &newest).await.map_err(|e| fail(e.to_string()))?;
    let selection = AlertSelection { tenant: Some(tenant), ..AlertSelection::default() };
    let by_tenant = store.alerts_by_change(&msp_id, &ChangeQuery { selection, ..newest }).await.map_err(|e| fail(e.to_string()))?;
    let contoso_in_msp = by_msp.alerts.iter().filter(|a| a.alert.tenant_id.as_str() == CONTOSO).count();
    let _ = writeln!(
        out,
        "   the MSP's index (by-change), newest {n} entries: {contoso_in_msp} of Contoso's alerts, {} of other tenants'",
        by_msp.read - contoso_in_msp
    );
    let _ = writeln!(out, "   Contoso's index (by-tenant-change), newest {n} entries: {} of Contoso's alerts", by_tenant.alerts.len());
    outcome.check(
        out,
        "one read of as many entries as Contoso has alerts returns all of them, no other tenant's looked at",
        by_tenant.read == of_contoso.len() && by_tenant.alerts.iter().map(|a| a.alert.id.to_string()).collect::<Vec<_>>() == of_contoso,
    );

    // The rival MSP of step 16 also has a tenant of that id: its own key, its own queue.
    let rival_token = stack.create_msp("rival-msp", "Rival MSP").await.map_err(|e| fail(e.to_string()))?;
    let rival = api.as_token(rival_token.expose());
    let rivals = ids(&rival.send(reqwest::Method::GET, &format!("/v1/alerts?tenant={CONTOSO}&limit=100"), None).await?);
    let _ = writeln!(out, "   the rival MSP's GET /v1/alerts?tenant={CONTOSO} → {} alert(s) of its own", rivals.len());
    outcome.check(
        out,
        "the rival MSP's queue for the same tenant id holds none of this MSP's alerts",
        rivals.iter().all(|id| !queue.contains(id)),
    );

    // An upgrade: Contoso's newest alert as written before the tenant index existed.
    let Some(newest_id) = queue.first().cloned() else { return Err(fail("Contoso has no alerts")) };
    client
        .update_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(format!("MSP#{msp_id}")))
        .key("sk", AttributeValue::S(format!("ALERT#{newest_id}")))
        .update_expression("REMOVE tenant_changes")
        .send()
        .await
        .map_err(|e| fail(format!("remove tenant_changes: {e}")))?;
    let before = contoso_queue(api).await?;
    let _ = writeln!(out, "   an alert written before the upgrade (no tenant_changes): Contoso's queue shows {} alerts", before.len());
    let stamped = store.index_earlier_alerts().await.map_err(|e| fail(e.to_string()))?;
    let after = contoso_queue(api).await?;
    let _ = writeln!(out, "   vigil-admin index-alerts → {stamped} alert(s) indexed; Contoso's queue shows {} alerts", after.len());
    outcome.check(
        out,
        "the backfill puts the earlier alert back in its tenant's queue, where it was",
        !before.contains(&newest_id) && stamped == 1 && after == queue,
    );
    Ok(())
}
