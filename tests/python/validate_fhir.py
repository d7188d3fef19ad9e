#!/usr/bin/env python3
"""Validates a safegate FHIR export (`safegate audit export --format fhir`: one AuditEvent
per line, NDJSON) against the FHIR R4 (4.0.1) AuditEvent model of the `fhir.resources`
package, version 6.2.x, whose default models are R4 (later major versions default to R5).

Usage: validate_fhir.py EXPORT.ndjson [--min-events N]

Checks each line parses and validates as an R4 AuditEvent, that the export holds at
least N events, that a released disclosure is shaped after IHE BALP PrivacyDisclosure
(type DICOM 110106, subtype ISO 21089 `disclose`, source and recipient agents, the
subject as Patient entity, outcome 0) and that a refusal has outcome 4; and, so the
validator is known not to pass everything, that a resource missing a required element
is rejected. Prints `ok   <check>` or `FAIL <check>: <why>`, then `N passed, N failed`;
exits 1 if any check failed.
"""

import argparse
import copy
import json
import sys

import fhir.resources
from fhir.resources.auditevent import AuditEvent
from pydantic import ValidationError

DCM = "http://dicom.nema.org/resources/ontology/DCM"
LIFECYCLE = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
BALP_DISCLOSURE = (
    "https://profiles.ihe.net/ITI/BALP/StructureDefinition/"
    "IHE.BasicAudit.PrivacyDisclosure.Source"
)


class CheckFailed(Exception):
    pass


def expect(condition, why):
    if not condition:
        raise CheckFailed(why)


def codes(codings):
    return {(c.get("system"), c.get("code")) for c in codings or []}


def is_balp_disclosure(event):
    """The BALP PrivacyDisclosure.Source shape, as far as it can be checked without a
    profile validator."""
    agent_types = set()
    for agent in event.get("agent", []):
        agent_types |= codes(agent.get("type", {}).get("coding"))
    patients = [
        e
        for e in event.get("entity", [])
        if (e.get("role") or {}).get("code") == "1"
        and (e.get("what") or {}).get("reference", "").startswith("Patient/")
    ]
    return (
        BALP_DISCLOSURE in (event.get("meta") or {}).get("profile", [])
        and (event["type"].get("system"), event["type"].get("code")) == (DCM, "110106")
        and (LIFECYCLE, "disclose") in codes(event.get("subtype"))
        and (DCM, "110153") in agent_types
        and (DCM, "110152") in agent_types
        and len(patients) == 1
        and len(event.get("entity", [])) >= 2
        and event.get("outcome") == "0"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export")
    parser.add_argument("--min-events", type=int, default=1)
    args = parser.parse_args()

    passed = failed = 0

    def check(name, run):
        nonlocal passed, failed
        try:
            run()
        except (CheckFailed, ValidationError, ValueError, KeyError) as error:
            failed += 1
            print(f"FAIL {name}: {error}")
        else:
            passed += 1
            print(f"ok   {name}")

    def r4_models():
        expect(
            fhir.resources.__fhir_version__ == "4.0.1",
            f"fhir.resources {fhir.resources.__version__} models FHIR "
            f"{fhir.resources.__fhir_version__}, not R4 4.0.1",
        )

    check("fhir.resources models are FHIR R4 (4.0.1)", r4_models)

    events = []
    with open(args.export, encoding="utf-8") as export:
        for number, line in enumerate(export, start=1):
            if not line.strip():
                continue
            try:
                resource = json.loads(line)
                AuditEvent.parse_obj(resource)
            except (ValueError, ValidationError) as error:
                failed += 1
                print(f"FAIL line {number} validates as an R4 AuditEvent: {error}")
                continue
            events.append(resource)
    print(f"     {len(events)} lines validated as R4 AuditEvent resources")

    def enough():
        expect(
            len(events) >= args.min_events,
            f"{len(events)} events, expected at least {args.min_events}",
        )

    check(f"the export holds at least {args.min_events} events", enough)

    def disclosure():
        expect(
            any(is_balp_disclosure(e) for e in events),
            "no released disclosure shaped after BALP PrivacyDisclosure.Source",
        )

    check("a released disclosure follows BALP PrivacyDisclosure", disclosure)

    def refusal():
        expect(
            any(e.get("outcome") == "4" and e.get("outcomeDesc") for e in events),
            "no refusal with outcome 4 and its reason",
        )

    check("a refusal has outcome 4 and a reason", refusal)

    def rejects_broken():
        expect(events, "no event to break")
        broken = copy.deepcopy(events[0])
        del broken["recorded"]
        try:
            AuditEvent.parse_obj(broken)
        except ValidationError:
            pass
        else:
            raise CheckFailed("an AuditEvent without `recorded` (1..1) was accepted")
        broken = copy.deepcopy(events[0])
        broken["agent"][0]["requestor"] = "perhaps"
        try:
            AuditEvent.parse_obj(broken)
        except ValidationError:
            return
        raise CheckFailed("an agent whose `requestor` is not a boolean was accepted")

    check("the validator rejects an AuditEvent missing a required element", rejects_broken)

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
