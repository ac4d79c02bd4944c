#!/usr/bin/env python3
"""Tests of cost-model.py: known counters give known dollars, runs combine by their median, and
a per-tenant figure that grows with the tenant count is reported. Run: python3 this file."""

import copy
import importlib.util
import json
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("cost_model", HERE / "cost-model.py")
cost_model = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cost_model)

FIXTURE = json.loads((HERE / "fixtures" / "cost-model-counters.json").read_text())


class CostModelTest(unittest.TestCase):
    def test_known_counters_cost_known_dollars_for_a_thousand_tenants(self):
        model = cost_model.median_run([FIXTURE])
        costs = cost_model.monthly_cost(model, 1000, tenants_per_msp=100, secret_per_msp=False)
        expected = {
            # 100 s x 0.5 GB x 1,000 tenants x 30 days at $0.0000133334 per GB-s
            "Lambda compute (GB-s, arm64)": 20.0001,
            "Lambda requests": 0.60,
            "SQS requests": 0.60,
            "DynamoDB writes (on-demand)": 37.50,
            "DynamoDB reads (on-demand)": 3.75,
            "DynamoDB storage": 1.2207,
            "Secrets Manager API calls": 30.00,
            "Secrets Manager secrets": 400.00,
            # (100 x 700 B + 6 x 288 x 450 B) x 30,000 tenant-days = 23.68 GiB at $0.50
            "CloudWatch Logs ingestion": 11.8411,
        }
        self.assertEqual(set(costs), set(expected))
        for component, dollars in expected.items():
            self.assertAlmostEqual(costs[component], dollars, places=3, msg=component)

    def test_one_secret_per_msp_app_costs_a_secret_per_hundred_tenants(self):
        model = cost_model.median_run([FIXTURE])
        costs = cost_model.monthly_cost(model, 1000, tenants_per_msp=100, secret_per_msp=True)
        self.assertAlmostEqual(costs["Secrets Manager secrets"], 4.00)
        self.assertAlmostEqual(cost_model.monthly_cost(model, 150, 100, True)["Secrets Manager secrets"], 0.80, msg="two MSPs")

    def test_runs_of_one_size_combine_by_their_median(self):
        runs = []
        for writes in (1000, 5000, 2000):
            run = copy.deepcopy(FIXTURE)
            run["warm"]["audit-poller"]["per_tenant_day"]["dynamodb_write_units"] = writes
            runs.append(run)
        model = cost_model.median_run(runs)
        self.assertEqual(model["functions"]["audit-poller"]["dynamodb_write_units"], 2000)
        self.assertEqual(model["runs"], 3)

    def test_a_per_tenant_figure_that_grows_with_the_tenant_count_is_reported(self):
        small = cost_model.median_run([dict(copy.deepcopy(FIXTURE), tenants=100)])
        same = cost_model.median_run([FIXTURE])
        self.assertEqual(cost_model.super_linear([small, same]), [])
        grown = copy.deepcopy(FIXTURE)
        grown["warm"]["audit-poller"]["per_tenant_day"]["dynamodb_read_units"] = 1200
        problems = cost_model.super_linear([small, cost_model.median_run([grown])])
        self.assertEqual(len(problems), 1)
        self.assertIn("audit-poller dynamodb_read_units", problems[0])

    def test_the_secret_model_follows_how_the_bench_ran_unless_asked(self):
        per_tenant = copy.deepcopy(FIXTURE)  # counters from before the bench had the choice
        msp_app = dict(copy.deepcopy(FIXTURE), args={"secret_per_tenant": False})
        self.assertFalse(cost_model.secrets_per_msp(None, [per_tenant]))
        self.assertTrue(cost_model.secrets_per_msp(None, [msp_app, msp_app]))
        self.assertFalse(cost_model.secrets_per_msp(None, [msp_app, per_tenant]), "mixed runs: the dearer model")
        self.assertFalse(cost_model.secrets_per_msp("per-tenant", [msp_app]))
        self.assertTrue(cost_model.secrets_per_msp("per-msp", [per_tenant]))

    def test_the_table_totals_the_components_and_divides_by_tenants(self):
        model = cost_model.median_run([FIXTURE])
        text = cost_model.table(model, [1000], 100, False, markdown=True)
        total = sum(cost_model.monthly_cost(model, 1000, 100, False).values())
        self.assertIn(f"${total:,.2f}", text)
        self.assertIn(f"${total / 1000:,.4f}", text)


if __name__ == "__main__":
    unittest.main()
