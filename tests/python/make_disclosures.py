#!/usr/bin/env python3
"""Puts disclosures and refusals into a demo gateway's disclosure log, over mutual TLS
with stubs generated from proto/ alone, so an export has entries of each kind.

Usage: make_disclosures.py --target HOST:PORT --pki DIR

Needs the demo case loaded (`safegate demo` does that). Makes: an IOM officer's query
about Dean Mills (a disclosure to police), a primary school's break-glass query about
him (a disclosure), the same school's query without break-glass (refused: no legitimate
relationship) and a nursery asserting a police role (refused). Prints one line per call
and `N passed, N failed`; exits 1 if any call did not end as expected.
"""

import argparse
import importlib
import sys
import tempfile

import grpc

from whoami_client import Gateway, generate_stubs

DEAN_PNC = "18/0012345R"
TIMEOUT_SECS = 10


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--pki", required=True)
    parser.add_argument("--server-name", default="localhost")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as stubs:
        common, identity, identity_grpc = generate_stubs(stubs)
        records = importlib.import_module("safegate.v1.records_pb2")
        query = importlib.import_module("safegate.v1.query_pb2")
        query_grpc = importlib.import_module("safegate.v1.query_pb2_grpc")
        gw = Gateway(args.target, args.pki, args.server_name, common, identity, identity_grpc)

        dean = records.PersonRef(
            identifier=records.Identifier(
                scheme=records.IDENTIFIER_SCHEME_PNC_ID, value=DEAN_PNC
            )
        )

        def ask(system, **context):
            stub = query_grpc.QueryServiceStub(gw.channel(system))
            request = query.QueryRequest(
                context=common.PractitionerContext(**context), subject=dean
            )
            return stub.Query(request, timeout=TIMEOUT_SECS)

        calls = [
            (
                "police query about Dean is answered",
                lambda: ask(
                    "police-iom",
                    practitioner_id="IOM-0001",
                    role=common.ROLE_IOM_OFFICER,
                    purpose=common.PURPOSE_OFFENDER_MANAGEMENT,
                ),
                None,
            ),
            (
                "primary school break-glass query is answered",
                lambda: ask(
                    "primary-school",
                    practitioner_id="DSL-0900",
                    role=common.ROLE_SCHOOL_DSL,
                    purpose=common.PURPOSE_CHILD_SAFEGUARDING,
                    break_glass=True,
                    justification="Ben disclosed at breakfast club that his father visits at night",
                ),
                None,
            ),
            (
                "primary school query without break-glass is refused",
                lambda: ask(
                    "primary-school",
                    practitioner_id="DSL-0900",
                    role=common.ROLE_SCHOOL_DSL,
                    purpose=common.PURPOSE_CHILD_SAFEGUARDING,
                ),
                grpc.StatusCode.PERMISSION_DENIED,
            ),
            (
                "nursery asserting a police role is refused",
                lambda: gw.who_am_i(
                    "nursery", {"practitioner_id": "DSL-0001", "role": common.ROLE_IOM_OFFICER}
                ),
                grpc.StatusCode.PERMISSION_DENIED,
            ),
        ]
        passed = failed = 0
        for name, call, expected in calls:
            try:
                call()
                outcome = None
            except grpc.RpcError as error:
                outcome = error.code()
            if outcome == expected:
                passed += 1
                print(f"ok   {name}")
            else:
                failed += 1
                got = "OK" if outcome is None else outcome.name
                want = "OK" if expected is None else expected.name
                print(f"FAIL {name}: expected {want}, got {got}")
        gw.close()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
