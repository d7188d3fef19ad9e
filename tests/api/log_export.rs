//! Streamed exports of the disclosure log: JSON lines that the CLI verifies offline with
//! the public key alone (and that name an edited line), CSV with stable columns and RFC
//! 4180 quoting, FHIR R4 AuditEvent NDJSON after IHE BALP; each export logged first.

use safegate::api::proto::{
    ExportEntriesRequest, ExportFormat, ListEntriesRequest, PractitionerContext, Purpose, Role,
};
use safegate::domain::ledger::export::CSV_COLUMNS;

use crate::helpers::temp_dir;
use crate::ig_support::{
    break_glass_query, everything, export, list, police_query, public_key, refusals,
    refused_school_query, safegate, stderr, stdout, with_case,
};

fn offline_verify(gateway: &crate::helpers::TestGateway, text: &str) -> std::process::Output {
    let file = temp_dir("export").join("log.jsonl");
    std::fs::write(&file, text).expect("write export");
    safegate(&[
        "audit",
        "verify",
        "--export",
        file.to_str().expect("utf-8 path"),
        "--public-key",
        &public_key(gateway),
    ])
}

#[tokio::test]
async fn a_jsonl_export_verifies_offline_with_the_public_key_alone_and_an_edit_is_named() {
    let gateway = crate::helpers::spawn_gateway().await;
    refusals(&gateway, 5).await;
    let text = export(&gateway, everything(ExportFormat::Jsonl)).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        1 + 6 + 1,
        "header, 5 refusals + the export, checkpoint"
    );
    let header: serde_json::Value = serde_json::from_str(lines[0]).expect("header");
    assert_eq!(header["record"], "header");
    assert_eq!(header["complete"], true);
    let entry: serde_json::Value = serde_json::from_str(lines[1]).expect("entry");
    assert_eq!(entry["seq"], 1);
    assert!(
        entry["canonical"]
            .as_str()
            .is_some_and(|c| c.contains("DSL-0"))
    );
    assert_eq!(entry["leaf_hash"].as_str().map(str::len), Some(64));
    let export_entry: serde_json::Value = serde_json::from_str(lines[6]).expect("entry");
    assert!(
        export_entry["canonical"]
            .as_str()
            .is_some_and(|c| c.contains("\"kind\":\"export\"")),
        "the export logged itself first and includes that entry"
    );
    let trailer: serde_json::Value = serde_json::from_str(lines[7]).expect("checkpoint");
    assert_eq!(trailer["record"], "checkpoint");
    assert_eq!(trailer["tree_size"], 6);

    let genuine = offline_verify(&gateway, &text);
    assert!(
        genuine.status.success(),
        "{}{}",
        stdout(&genuine),
        stderr(&genuine)
    );
    assert!(
        stdout(&genuine).starts_with("OK: 6 entries"),
        "{}",
        stdout(&genuine)
    );

    // Edit the practitioner of the third entry in its canonical text.
    let third: serde_json::Value = serde_json::from_str(lines[3]).expect("entry 3");
    let third_id = third["entry_id"].as_str().expect("id").to_owned();
    let edited = text.replacen("DSL-2", "DSL-7", 1);
    assert_ne!(edited, text);
    let caught = offline_verify(&gateway, &edited);
    assert_eq!(caught.status.code(), Some(3), "{}", stderr(&caught));
    let said = stdout(&caught);
    assert!(said.contains("entry 3"), "{said}");
    assert!(said.contains(&third_id), "{said}");
    assert!(said.contains("line 4"), "{said}");

    // A removed line is named too.
    let mut without: Vec<&str> = lines.clone();
    without.remove(4);
    let caught = offline_verify(&gateway, &(without.join("\n") + "\n"));
    assert_eq!(caught.status.code(), Some(3));
    assert!(stdout(&caught).contains("entry 4"), "{}", stdout(&caught));

    // A cut-off export (no checkpoint) cannot pass.
    let cut = lines[..lines.len() - 1].join("\n") + "\n";
    let caught = offline_verify(&gateway, &cut);
    assert_eq!(caught.status.code(), Some(3));
    assert!(stdout(&caught).contains("cut short"), "{}", stdout(&caught));

    // A filtered export is refused with the reason.
    let filtered = export(
        &gateway,
        ExportEntriesRequest {
            kind: "refusal".into(),
            ..everything(ExportFormat::Jsonl)
        },
    )
    .await;
    let refused = offline_verify(&gateway, &filtered);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("filtered (by kind)")
            && stderr(&refused).contains("unfiltered export"),
        "{}",
        stderr(&refused)
    );
}

#[tokio::test]
async fn each_export_is_logged_before_it_streams() {
    let gateway = crate::helpers::spawn_gateway().await;
    refusals(&gateway, 2).await;
    export(
        &gateway,
        ExportEntriesRequest {
            system_id: "nursery".into(),
            ..everything(ExportFormat::Csv)
        },
    )
    .await;
    let exports = list(
        &gateway,
        ListEntriesRequest {
            kind: "export".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(exports.len(), 1);
    assert_eq!(exports[0].system_id, "ig-office");
    assert_eq!(exports[0].rule_ids, ["audit.export"]);
    assert!(
        exports[0].reason.contains("csv") && exports[0].reason.contains("system_id"),
        "{}",
        exports[0].reason
    );
}

/// Splits RFC 4180 text into records of fields.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let (mut record, mut field) = (Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    records
}

#[tokio::test]
async fn a_csv_export_has_stable_columns_and_rfc_4180_quoting() {
    let (gateway, case) = with_case().await;
    let entry_id = break_glass_query(&gateway).await;
    let text = export(&gateway, everything(ExportFormat::Csv)).await;
    assert!(
        text.starts_with(
            "seq,entry_id,recorded_at,kind,decision,rpc,agency,system_id,certificate_sha256,\
             practitioner_id,role,purpose,lawful_basis,justification,break_glass,\
             subject_person_id,linked_person_ids,released,withheld,rule_ids,policy_version,\
             reason,recipient_system,trace_id,leaf_hash,chain_hash,review_outcome,reviewed_at,\
             reviewer_id,review_note,formula_escaped_columns\r\n"
        ),
        "{}",
        text.lines().next().unwrap_or_default()
    );
    assert!(text.ends_with("\r\n"));
    let records = parse_csv(&text);
    assert!(records.iter().all(|r| r.len() == CSV_COLUMNS.len()));
    let column = |name: &str| CSV_COLUMNS.iter().position(|c| *c == name).expect("column");
    let row = records
        .iter()
        .find(|r| r[column("entry_id")] == entry_id)
        .expect("the break-glass query has a row");
    assert_eq!(row[column("kind")], "query");
    assert_eq!(row[column("decision")], "released");
    assert_eq!(row[column("system_id")], "primary-school");
    assert_eq!(row[column("break_glass")], "true");
    assert_eq!(row[column("subject_person_id")], case.persons["Dean"]);
    assert!(row[column("justification")].contains("breakfast club"));
    assert_eq!(row[column("review_outcome")], "");
    let released: serde_json::Value =
        serde_json::from_str(&row[column("released")]).expect("facts are a JSON array");
    assert!(released.as_array().is_some_and(|facts| !facts.is_empty()));
    // The JSON cell holds commas and quotes, so it is quoted with quotes doubled.
    let raw_line = text
        .split("\r\n")
        .find(|line| line.contains(&entry_id))
        .expect("raw row");
    assert!(raw_line.contains(",\"[{\"\"person_id\"\":"), "{raw_line}");
    assert_eq!(row[column("formula_escaped_columns")], "");
}

#[tokio::test]
async fn a_csv_cell_that_would_run_as_a_formula_is_escaped_and_jsonl_is_not() {
    let (gateway, _case) = with_case().await;
    let justification = "=HYPERLINK(\"http://x.example\",\"open\") child seen at night";
    let answer = crate::ig_support::query_dean(
        &gateway,
        "primary-school",
        PractitionerContext {
            practitioner_id: "+DSL-0900".into(),
            role: Role::SchoolDsl.into(),
            purpose: Purpose::ChildSafeguarding.into(),
            break_glass: true,
            justification: justification.into(),
        },
    )
    .await
    .expect("answered");
    let text = export(&gateway, everything(ExportFormat::Csv)).await;
    let records = parse_csv(&text);
    let column = |name: &str| CSV_COLUMNS.iter().position(|c| *c == name).expect("column");
    let row = records
        .iter()
        .find(|r| r[column("entry_id")] == answer.disclosure_entry_id)
        .expect("row");
    assert_eq!(row[column("justification")], format!("'{justification}"));
    assert_eq!(row[column("practitioner_id")], "'+DSL-0900");
    assert_eq!(
        row[column("formula_escaped_columns")],
        "practitioner_id;justification"
    );
    // The JSON-lines export keeps the entry byte for byte (it is what was hashed).
    let lines = export(&gateway, everything(ExportFormat::Jsonl)).await;
    assert!(lines.contains("=HYPERLINK("), "the justification is there");
    assert!(!lines.contains("'=HYPERLINK("), "JSONL is not escaped");
}

#[tokio::test]
async fn a_fhir_export_is_one_r4_audit_event_per_entry_after_balp() {
    let (gateway, case) = with_case().await;
    let police = police_query(&gateway).await;
    refused_school_query(&gateway).await;
    let text = export(&gateway, everything(ExportFormat::FhirNdjson)).await;
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert!(events.iter().all(|e| e["resourceType"] == "AuditEvent"));
    let disclosure = events
        .iter()
        .find(|e| e["id"] == police.as_str())
        .expect("the police query is exported");
    assert_eq!(
        disclosure["meta"]["profile"][0],
        "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PrivacyDisclosure.Source"
    );
    assert_eq!(
        disclosure["type"]["system"],
        "http://dicom.nema.org/resources/ontology/DCM"
    );
    assert_eq!(disclosure["type"]["code"], "110106");
    assert_eq!(disclosure["subtype"][0]["code"], "disclose");
    assert_eq!(disclosure["outcome"], "0");
    assert_eq!(disclosure["purposeOfEvent"][0]["coding"][0]["code"], "GOV");
    assert_eq!(
        disclosure["purposeOfEvent"][0]["text"],
        "offender_management"
    );
    let agent_codes: Vec<&str> = disclosure["agent"]
        .as_array()
        .expect("agents")
        .iter()
        .filter_map(|a| a["type"]["coding"][0]["code"].as_str())
        .collect();
    assert_eq!(agent_codes, ["110153", "110152", "IRCP"]);
    assert_eq!(
        disclosure["agent"][1]["who"]["identifier"]["value"],
        "police-iom"
    );
    assert_eq!(
        disclosure["entity"][0]["what"]["reference"],
        format!("Patient/{}", case.persons["Dean"])
    );
    assert_eq!(disclosure["entity"][0]["role"]["code"], "1");
    assert_eq!(
        disclosure["source"]["observer"],
        disclosure["agent"][0]["who"]
    );

    let refusal = events
        .iter()
        .find(|e| {
            e["outcome"] == "4" && e["agent"][1]["who"]["identifier"]["value"] == "primary-school"
        })
        .expect("the refusal is exported");
    assert!(
        refusal["outcomeDesc"]
            .as_str()
            .is_some_and(|d| d.contains("query.no_legitimate_relationship"))
    );
    assert_eq!(refusal["purposeOfEvent"][0]["coding"][0]["code"], "THREAT");
    assert!(
        refusal["meta"].is_null(),
        "a refusal claims no BALP profile"
    );
}
