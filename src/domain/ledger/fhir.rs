//! A disclosure-log entry as a FHIR R4 AuditEvent, shaped after IHE Basic Audit Log
//! Patterns (BALP) "Privacy Disclosure at Source": type DICOM 110106 "Export", subtype
//! ISO 21089 `disclose`, the gateway as source agent (DICOM 110153), the receiving agency
//! system as recipient (DICOM 110152), the practitioner as information recipient (v3
//! ParticipationType IRCP), the subject as the Patient entity and each fact as a data
//! entity. Outcome 0 is released (or a dry run), 4 a refusal. Entries that are not
//! disclosures (reads of the log, refusals of other calls) keep the same shape with the
//! DICOM event type that fits and claim no BALP profile.

use serde_json::{Value, json};

use crate::domain::ledger::StoredEntry;
use crate::domain::ledger::{Decision, Disclosed, EntryKind};

const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
const BALP_DISCLOSURE: &str =
    "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PrivacyDisclosure.Source";

/// DICOM audit event types (DCM part 16, CID 400).
const EXPORT: (&str, &str) = ("110106", "Export");
const QUERY: (&str, &str) = ("110112", "Query");
const AUDIT_LOG_USED: (&str, &str) = ("110101", "Audit Log Used");
const SECURITY_ALERT: (&str, &str) = ("110113", "Security Alert");
/// DICOM "Patient Record": a person's record linked, reviewed or split.
const PATIENT_RECORD: (&str, &str) = ("110110", "Patient Record");

/// The v3 PurposeOfUse code (system v3-ActReason) closest to each safegate purpose; the
/// purpose's own word goes in `text`. v3 has no child-protection code: THREAT ("to
/// prevent injury or disease to living subjects who may be the target of violence") is
/// the nearest.
fn purpose_of_use(purpose: &str) -> Option<(&'static str, &'static str)> {
    match purpose {
        "child_safeguarding" => Some(("THREAT", "threat")),
        "offender_management" => Some(("GOV", "government")),
        "order_enforcement" => Some(("HLEGAL", "legal")),
        "audit" => Some(("HCOMPL", "health compliance")),
        _ => None,
    }
}

fn coding(system: &str, (code, display): (&str, &str)) -> Value {
    json!({"system": system, "code": code, "display": display})
}

/// FHIR strings may not be empty: `None` for an empty one.
fn text(value: &str) -> Option<Value> {
    (!value.is_empty()).then(|| Value::String(value.to_owned()))
}

/// Entity details, leaving out empty values.
fn details(pairs: &[(&str, &str)]) -> Vec<Value> {
    pairs
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| json!({"type": name, "valueString": value}))
        .collect()
}

/// Drops `null` members, so optional elements are absent rather than null.
fn compact(mut value: Value) -> Value {
    if let Value::Object(map) = &mut value {
        map.retain(|_, member| !member.is_null());
    }
    value
}

/// The gateway itself: the audit source, and the source agent of every disclosure.
fn gateway() -> Value {
    json!({
        "identifier": {"system": "urn:safegate", "value": "gateway"},
        "display": "safegate gateway",
    })
}

fn event_type(kind: EntryKind, rpc: &str) -> (&'static str, &'static str) {
    match kind {
        EntryKind::Query | EntryKind::Notification | EntryKind::Export => EXPORT,
        EntryKind::Explain => QUERY,
        EntryKind::LogRead | EntryKind::Review => AUDIT_LOG_USED,
        EntryKind::Identity | EntryKind::Contact => PATIENT_RECORD,
        EntryKind::Refusal if rpc.starts_with("safegate.v1.AuditService/") => AUDIT_LOG_USED,
        EntryKind::Refusal
            if rpc.starts_with("safegate.v1.QueryService/")
                || rpc.starts_with("safegate.v1.Notification") =>
        {
            EXPORT
        }
        EntryKind::Refusal | EntryKind::KeyChange | EntryKind::Alert => SECURITY_ALERT,
    }
}

fn action(kind: EntryKind, event: (&str, &str)) -> &'static str {
    match (kind, event.0) {
        (EntryKind::Review, _) | (EntryKind::Contact, _) => "C",
        (EntryKind::Identity, _) | (EntryKind::KeyChange, _) => "U",
        (EntryKind::Alert, _) => "C",
        (_, "110106") | (_, "110101") => "R",
        _ => "E",
    }
}

fn fact_entity(fact: &Disclosed, disposition: &str) -> Value {
    let system = if fact.category == "disclosure_log" {
        "urn:safegate:disclosure-log"
    } else {
        "urn:safegate:record"
    };
    compact(json!({
        "what": compact(json!({
            "identifier": {"system": system, "value": fact.record_id},
            "display": text(&fact.category),
        })),
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
            "code": "2",
            "display": "System Object",
        },
        "role": {
            "system": "http://terminology.hl7.org/CodeSystem/object-role",
            "code": "4",
            "display": "Domain Resource",
        },
        "detail": details(&[
            ("disposition", disposition),
            ("person_id", &fact.person_id),
            ("category", &fact.category),
            ("level", &fact.level),
            ("rule_id", &fact.rule_id),
        ]),
    }))
}

/// The entry as a FHIR R4 AuditEvent resource.
pub fn audit_event(stored: &StoredEntry) -> Value {
    let e = &stored.entry;
    let event = event_type(e.kind, &e.rpc);
    let outcome = match e.decision {
        Decision::Released | Decision::DryRun | Decision::Recorded => "0",
        Decision::Refused => "4",
    };

    let mut purposes = Vec::new();
    if !e.purpose.is_empty() {
        purposes.push(compact(json!({
            "coding": purpose_of_use(&e.purpose)
                .map(|code| vec![coding(ACT_REASON, code)]),
            "text": e.purpose,
        })));
    }
    if e.break_glass {
        purposes.push(json!({
            "coding": [coding(ACT_REASON, ("BTG", "break the glass"))],
            "text": "break_glass",
        }));
    }

    let mut agents = vec![json!({
        "type": {"coding": [coding(DCM, ("110153", "Source Role ID"))]},
        "who": gateway(),
        "requestor": false,
        "network": {"address": "urn:safegate:gateway", "type": "5"},
    })];
    if !e.system_id.is_empty() {
        agents.push(compact(json!({
            "type": {"coding": [coding(DCM, ("110152", "Destination Role ID"))]},
            "who": {
                "identifier": {"system": "urn:safegate:system", "value": e.system_id},
                "display": if e.agency.is_empty() {
                    e.system_id.clone()
                } else {
                    format!("{} ({})", e.system_id, e.agency)
                },
            },
            "altId": text(&e.certificate_sha256),
            "requestor": false,
            "network": {"address": format!("urn:safegate:system:{}", e.system_id), "type": "5"},
        })));
    } else if !e.certificate_sha256.is_empty() {
        agents.push(json!({
            "type": {"coding": [coding(DCM, ("110152", "Destination Role ID"))]},
            "who": {"display": "unregistered client certificate"},
            "altId": e.certificate_sha256,
            "requestor": false,
        }));
    }
    if !e.practitioner_id.is_empty() {
        let system = if e.system_id.is_empty() {
            "urn:safegate:practitioner".to_owned()
        } else {
            format!("urn:safegate:practitioner:{}", e.system_id)
        };
        agents.push(compact(json!({
            "type": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                "code": "IRCP",
                "display": "information recipient",
            }]},
            "role": text(&e.role).map(|role| json!([{"text": role}])),
            "who": {"identifier": {"system": system, "value": e.practitioner_id}},
            "requestor": true,
            "policy": text(&e.policy_version)
                .map(|_| json!([format!("urn:safegate:policy:{}", e.policy_version)])),
            "purposeOfUse": (!purposes.is_empty()).then(|| purposes.clone()),
        })));
    }

    let mut entities = Vec::new();
    if !e.subject_person_id.is_empty() {
        let linked: Vec<(&str, &str)> = e
            .linked_person_ids
            .iter()
            .map(|id| ("linked_person_id", id.as_str()))
            .collect();
        entities.push(compact(json!({
            "what": {"reference": format!("Patient/{}", e.subject_person_id)},
            "type": {
                "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                "code": "1",
                "display": "Person",
            },
            "role": {
                "system": "http://terminology.hl7.org/CodeSystem/object-role",
                "code": "1",
                "display": "Patient",
            },
            "detail": (!linked.is_empty()).then(|| details(&linked)),
        })));
    }
    entities.extend(e.released.iter().map(|f| fact_entity(f, "released")));
    entities.extend(e.withheld.iter().map(|f| fact_entity(f, "withheld")));
    let seq = stored.seq.to_string();
    let rule_ids = e.rule_ids.join(";");
    let review = stored.latest_review.as_ref();
    let review_outcome = review.map(|r| r.outcome.as_str()).unwrap_or_default();
    let reviewed_at = review.map(|r| r.reviewed_at.as_str()).unwrap_or_default();
    entities.push(json!({
        "what": {
            "identifier": {"system": "urn:safegate:disclosure-log", "value": e.entry_id},
            "display": "disclosure-log entry",
        },
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
            "code": "2",
            "display": "System Object",
        },
        "detail": details(&[
            ("seq", &seq),
            ("kind", e.kind.as_str()),
            ("rpc", &e.rpc),
            ("lawful_basis", &e.lawful_basis),
            ("justification", &e.justification),
            ("rule_ids", &rule_ids),
            ("policy_version", &e.policy_version),
            ("recipient_system", &e.recipient_system),
            ("trace_id", &e.trace_id),
            ("leaf_hash", &stored.leaf_hash),
            ("chain_hash", &stored.chain_hash),
            ("break_glass_review", review_outcome),
            ("break_glass_reviewed_at", reviewed_at),
        ]),
    }));

    let is_privacy_disclosure = event == EXPORT
        && e.decision == Decision::Released
        && !e.subject_person_id.is_empty()
        && !e.system_id.is_empty()
        && !e.released.is_empty();
    let mut subtype = Vec::new();
    if event == EXPORT {
        subtype.push(json!({
            "system": "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle",
            "code": "disclose",
            "display": "Disclose Record Lifecycle Event",
        }));
    }
    if !e.rpc.is_empty() {
        subtype.push(json!({"system": "urn:safegate:rpc", "code": e.rpc}));
    }

    compact(json!({
        "resourceType": "AuditEvent",
        "id": e.entry_id,
        "meta": is_privacy_disclosure.then(|| json!({"profile": [BALP_DISCLOSURE]})),
        "type": coding(DCM, event),
        "subtype": (!subtype.is_empty()).then_some(subtype),
        "action": action(e.kind, event),
        "recorded": e.recorded_at,
        "outcome": outcome,
        "outcomeDesc": text(&e.reason),
        "purposeOfEvent": (!purposes.is_empty()).then_some(purposes),
        "agent": agents,
        "source": {
            "site": "safegate",
            "observer": gateway(),
            "type": [{
                "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                "code": "4",
                "display": "Application Server",
            }],
        },
        "entity": entities,
    }))
}
