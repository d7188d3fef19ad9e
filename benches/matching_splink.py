"""Splink 5.0.0 (DuckDB) on the matching bench's records, for comparison with safegate.

Usage: matching_splink.py RECORDS.csv AUTO_LINK_PROBABILITY REVIEW_PROBABILITY

Comparable to policies/matching.toml: the same normalised fields, the same blocking rules
(dob in either day/month order + family Double Metaphone; the same + given Double
Metaphone; family + given Double Metaphone + birth year; postcode + given initial; family
Double Metaphone + given initial + day and month of birth; dob + postcode district; both
Double Metaphones + district) plus NHS number and PNC id, Splink's standard comparisons
(NameComparison with term-frequency adjustment, DateOfBirthComparison, PostcodeComparison,
address Jaro-Winkler, sex, NHS number and PNC id exact: the identifiers safegate resolves
first and vetoes on), u by random sampling, m by EM (sessions blocked on dob, then on both
names). Splink has no given-name veto; it compares first given names only. Pairs are predicted from the review threshold, clustered at both
thresholds, and scored pairwise against the true person: lines `PAIRWISE threshold
precision recall f1` (tab-separated).
"""

import logging
import sys
import time

import duckdb
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

logging.getLogger("splink").setLevel(logging.ERROR)


def main() -> None:
    csv, auto, review = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    started = time.time()
    con = duckdb.connect()
    con.execute(
        f"create table records as select * from read_csv('{csv}', all_varchar = true, header = true)"
    ).fetchall()
    db_api = DuckDBAPI(connection=con)
    records = db_api.register("records")

    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        blocking_rules_to_generate_predictions=[
            block_on("nhs_number"),
            block_on("pnc_id"),
            block_on("dob_any_order", "family_dm"),
            block_on("dob_any_order", "given_dm"),
            block_on("family_dm", "given_dm", "birth_year"),
            block_on("postcode", "given_initial"),
            block_on("family_dm", "given_initial", "month_day"),
            block_on("dob", "district"),
            block_on("given_dm", "family_dm", "district"),
        ],
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("family_name").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.PostcodeComparison("postcode"),
            cl.JaroWinklerAtThresholds("address", [0.9]),
            cl.ExactMatch("sex"),
            # The identifiers safegate resolves first and vetoes on: here as comparisons
            # (agreement all but decides a match, disagreement all but rules it out).
            cl.ExactMatch("nhs_number"),
            cl.ExactMatch("pnc_id"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(records, settings, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given_name", "family_name", "dob")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("given_name", "family_name")
    )
    predictions = linker.inference.predict(threshold_match_probability=review)
    trained = time.time() - started
    print(f"RESULT trained and predicted in {trained:.0f} s")

    for threshold in (auto, review):
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold_match_probability=threshold
        )
        table = clusters.physical_name
        tp, pp, tt = con.cursor().execute(
            f"""
            with c as (select c.cluster_id, r.cluster as truth
                       from {table} c join records r using (unique_id)),
                 both_ as (select count(*) n from c group by cluster_id, truth),
                 pred as (select count(*) n from c group by cluster_id),
                 tru as (select count(*) n from c group by truth)
            select (select sum(n * (n - 1) / 2) from both_),
                   (select sum(n * (n - 1) / 2) from pred),
                   (select sum(n * (n - 1) / 2) from tru)
            """
        ).fetchone()
        precision = tp / pp if pp else 1.0
        recall = tp / tt if tt else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        print(f"PAIRWISE {threshold}\t{precision:.5f}\t{recall:.5f}\t{f1:.5f}")


if __name__ == "__main__":
    main()
