#!/usr/bin/env python3
"""cost-model.py - what Vigil costs in AWS per tenant-month, from the scale bench's counters.

Usage:
    infra/scripts/cost-model.py COUNTERS.json [MORE.json ...] [--tenants 100,1000,10000]
                                [--tenants-per-msp 100] [--markdown]

COUNTERS.json is what `scale-bench --out` writes (one file per run; several runs of the same
size are combined by their median, and runs of different sizes are compared per tenant: a
per-tenant figure that grows with the tenant count is reported as super-linear, a bug).

The model (every figure per tenant per day comes from the bench's warm tick x 288 ticks a day,
the 5-minute tick; the content mix of that tick is the bench's, see the README):

* Lambda (arm64): GB-seconds = busy seconds (the bench's summed invocation durations) x the
  function's MemorySize from template.yaml; requests = invocations (batches).
* SQS standard: requests (sends in batches of 10, one receive and one delete batch per
  invocation, visibility changes); each under 64 KB.
* DynamoDB on-demand: read and write request units as the counting decorators count them (one
  unit per get / put, a list one per four items, transactions two) plus storage.
* Secrets Manager: GetSecretValue calls (each poller instance caches a secret for 300 s, the
  tick's length, so about one read per stream job whose instance has not seen the tenant) and
  secrets per month: one per tenant today (the tenant's Microsoft app credentials), or one per
  MSP app (--secrets per-msp, the multi-tenant app of the consent onboarding; by default as the
  bench ran: scale-bench gives tenants the MSP app's secret unless run with --secrets per-tenant).
* CloudWatch Logs ingestion: platform lines per invocation plus the poller's one line per
  stream job (sizes assumed, below).

Not included (fixed, not per tenant): Lambda/SQS free tiers, the event sources' empty long
polls, CloudWatch custom metrics and alarms, API Gateway, the dashboard, KMS (SQS-managed SSE).

Prices: AWS list prices, us-east-1, as published at the date below (not fetched at run time).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

PRICES_AS_OF = "2026-12-06 (AWS public list prices, us-east-1; unchanged since the DynamoDB on-demand price cut of 2024-11-01)"
PRICES = {
    "lambda_gb_second_arm64": 0.0000133334,
    "lambda_request": 0.20 / 1_000_000,
    "sqs_request": 0.40 / 1_000_000,
    "dynamodb_write_unit": 0.625 / 1_000_000,
    "dynamodb_read_unit": 0.125 / 1_000_000,
    "dynamodb_storage_gb_month": 0.25,
    "secrets_api_call": 0.05 / 10_000,
    "secret_month": 0.40,
    "logs_ingestion_gb": 0.50,
}

ASSUMPTIONS = {
    "days_per_month": 30.0,
    # START, END and REPORT platform lines of one invocation (JSON format).
    "log_bytes_per_invocation": 700,
    # The poller's "Stream polled." line per stream job (INFO level).
    "log_bytes_per_poll_job": 450,
    # Stream ledgers, record claims until their TTL, alerts and deliveries of one tenant.
    "storage_mb_per_tenant": 5.0,
}

FUNCTIONS = ("audit-poller", "alert-evaluator", "ticket-dispatcher")


def median_run(runs: list[dict]) -> dict:
    """Per tenant-day counters of each function, the median over runs of one size."""
    combined: dict = {"tenants": runs[0]["tenants"], "functions": {}, "runs": len(runs)}
    for function in FUNCTIONS:
        keys = runs[0]["warm"][function]["per_tenant_day"].keys()
        combined["functions"][function] = {
            key: statistics.median(run["warm"][function]["per_tenant_day"][key] for run in runs) for key in keys
        }
    combined["memory_mb"] = runs[0]["memory_mb"]
    combined["streams_per_tenant"] = runs[0].get("streams_per_tenant", 6)
    combined["ticks_per_day"] = runs[0].get("ticks_per_day", 288)
    return combined


def monthly_cost(model: dict, tenants: int, tenants_per_msp: int, secret_per_msp: bool) -> dict[str, float]:
    """Dollars per month for `tenants` tenants, by component."""
    days = ASSUMPTIONS["days_per_month"]
    gb_seconds = requests = sqs = reads = writes = secret_calls = log_bytes = 0.0
    for function, counters in model["functions"].items():
        gb_seconds += counters["busy_seconds"] * model["memory_mb"][function] / 1024.0
        requests += counters["invocations"]
        sqs += counters["sqs_requests"]
        reads += counters["dynamodb_read_units"]
        writes += counters["dynamodb_write_units"]
        secret_calls += counters["secret_gets"]
        log_bytes += counters["invocations"] * ASSUMPTIONS["log_bytes_per_invocation"]
    poll_jobs_per_day = model["streams_per_tenant"] * model["ticks_per_day"]
    log_bytes += poll_jobs_per_day * ASSUMPTIONS["log_bytes_per_poll_job"]
    scale = tenants * days
    secrets = -(-tenants // tenants_per_msp) if secret_per_msp else tenants
    return {
        "Lambda compute (GB-s, arm64)": gb_seconds * scale * PRICES["lambda_gb_second_arm64"],
        "Lambda requests": requests * scale * PRICES["lambda_request"],
        "SQS requests": sqs * scale * PRICES["sqs_request"],
        "DynamoDB writes (on-demand)": writes * scale * PRICES["dynamodb_write_unit"],
        "DynamoDB reads (on-demand)": reads * scale * PRICES["dynamodb_read_unit"],
        "DynamoDB storage": tenants * ASSUMPTIONS["storage_mb_per_tenant"] / 1024.0 * PRICES["dynamodb_storage_gb_month"],
        "Secrets Manager API calls": secret_calls * scale * PRICES["secrets_api_call"],
        "Secrets Manager secrets": secrets * PRICES["secret_month"],
        "CloudWatch Logs ingestion": log_bytes * scale / 1024**3 * PRICES["logs_ingestion_gb"],
    }


def super_linear(models: list[dict], tolerance: float = 0.15) -> list[str]:
    """Per-tenant counters that grow with the tenant count by more than `tolerance`."""
    problems = []
    ordered = sorted(models, key=lambda m: m["tenants"])
    for small, large in zip(ordered, ordered[1:]):
        for function in FUNCTIONS:
            for key, value in large["functions"][function].items():
                before = small["functions"][function][key]
                if before > 0 and value > before * (1 + tolerance):
                    problems.append(
                        f"{function} {key}: {before:.2f} per tenant-day at {small['tenants']} tenants, "
                        f"{value:.2f} at {large['tenants']}"
                    )
    return problems


def table(model: dict, sizes: list[int], tenants_per_msp: int, secret_per_msp: bool, markdown: bool) -> str:
    costs = {n: monthly_cost(model, n, tenants_per_msp, secret_per_msp) for n in sizes}
    components = list(costs[sizes[0]].keys())
    header = ["Component"] + [f"{n:,} tenants / month" for n in sizes]
    rows = [[c] + [f"${costs[n][c]:,.2f}" for n in sizes] for c in components]
    rows.append(["**Total**" if markdown else "Total"] + [f"${sum(costs[n].values()):,.2f}" for n in sizes])
    rows.append(["**Per tenant-month**" if markdown else "Per tenant-month"] + [f"${sum(costs[n].values()) / n:,.4f}" for n in sizes])
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * len(sizes)) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    return "\n".join("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths))) for r in [header] + rows)


def secrets_per_msp(choice: str | None, runs: list[dict]) -> bool:
    """Whether to price one secret per MSP app: as asked, else as the bench's runs were set up
    (counters written before the bench had the choice gave every tenant its own secret)."""
    if choice is not None:
        return choice == "per-msp"
    return all(run.get("args", {}).get("secret_per_tenant", True) is False for run in runs)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("counters", nargs="+", type=Path)
    parser.add_argument("--tenants", default="100,1000,10000")
    parser.add_argument("--tenants-per-msp", type=int, default=100)
    parser.add_argument(
        "--secrets",
        choices=["per-msp", "per-tenant"],
        help="one Microsoft app secret per MSP app or per tenant (default: as the bench ran, its args.secret_per_tenant)",
    )
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    by_size: dict[int, list[dict]] = {}
    for path in args.counters:
        run = json.loads(path.read_text())
        by_size.setdefault(run["tenants"], []).append(run)
    models = [median_run(runs) for _, runs in sorted(by_size.items())]
    model = models[-1]
    sizes = [int(n) for n in args.tenants.split(",")]
    print(f"Counters: {model['runs']} run(s) of {model['tenants']} tenants (median); prices as of {PRICES_AS_OF}.")
    print(f"Memory sizes (template.yaml): {model['memory_mb']}; assumptions: {ASSUMPTIONS}.")
    secret_per_msp = secrets_per_msp(args.secrets, by_size[model["tenants"]])
    secrets = "one secret per MSP app" if secret_per_msp else "one secret per tenant"
    print(f"Secrets: {secrets} ({args.tenants_per_msp} tenants per MSP).")
    print()
    print(table(model, sizes, args.tenants_per_msp, secret_per_msp, args.markdown))
    problems = super_linear(models)
    if len(models) > 1:
        print()
        print("Super-linear per-tenant figures: " + ("; ".join(problems) if problems else "none"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
