//! Search the log: by person (an identifier, or name and date of birth through identity
//! resolution), agency, system, practitioner, kind, decision, break-glass and time,
//! a page at a time. The form is posted, so identifiers and names stay out of URLs and
//! browser history; each page of results is one logged read.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use crate::console::ConsoleState;
use crate::console::officer::Officer;
use crate::console::page::{Layout, Nav, render};
use crate::console::views::{
    Choice, EntryRow, FieldError, check_form, choices, error_for, person_reference,
};
use crate::domain::Agency;
use crate::domain::identity::search::unique_match;
use crate::domain::ledger::audit::{LogSearch, next_page_token};
use crate::domain::ledger::{Decision, EntryKind};
use crate::domain::records::Day;
use crate::domain::records::demographics::Postcode;
use crate::domain::records::facts::PersonDetails;

/// Entries per page of results.
const PAGE: u32 = 50;

/// The search form as posted; every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SearchForm {
    pub csrf_token: String,
    pub person: String,
    pub given_name: String,
    pub family_name: String,
    pub dob_day: String,
    pub dob_month: String,
    pub dob_year: String,
    pub postcode: String,
    pub agency: String,
    pub system_id: String,
    pub practitioner_id: String,
    pub kind: String,
    pub decision: String,
    pub break_glass: String,
    pub from_date: String,
    pub to_date: String,
    pub page_token: String,
}

impl SearchForm {
    /// The fields a next page carries over (all but the token and the page).
    pub fn carried(&self) -> Vec<(&'static str, &str)> {
        [
            ("person", &self.person),
            ("given_name", &self.given_name),
            ("family_name", &self.family_name),
            ("dob_day", &self.dob_day),
            ("dob_month", &self.dob_month),
            ("dob_year", &self.dob_year),
            ("postcode", &self.postcode),
            ("agency", &self.agency),
            ("system_id", &self.system_id),
            ("practitioner_id", &self.practitioner_id),
            ("kind", &self.kind),
            ("decision", &self.decision),
            ("break_glass", &self.break_glass),
            ("from_date", &self.from_date),
            ("to_date", &self.to_date),
        ]
        .into_iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .map(|(name, value)| (name, value.as_str()))
        .collect()
    }

    fn by_demographics(&self) -> bool {
        [
            &self.given_name,
            &self.family_name,
            &self.dob_day,
            &self.dob_month,
            &self.dob_year,
            &self.postcode,
        ]
        .iter()
        .any(|v| !v.trim().is_empty())
    }
}

/// Whom the search is about, once the form is read.
enum Person {
    Anyone,
    Reference(crate::domain::records::PersonRef),
    Details(Box<PersonDetails>),
}

/// The form read into a search, or the problems with it.
fn read_form(form: &SearchForm) -> Result<(Person, LogSearch), Vec<FieldError>> {
    let mut errors = Vec::new();
    let person = match (form.person.trim().is_empty(), form.by_demographics()) {
        (false, true) => {
            errors.push(FieldError {
                field: "person",
                message: "Search by an identifier or by name and date of birth, not both".into(),
            });
            Person::Anyone
        }
        (false, false) => match person_reference(&form.person) {
            Ok(reference) => Person::Reference(reference),
            Err(message) => {
                errors.push(FieldError {
                    field: "person",
                    message,
                });
                Person::Anyone
            }
        },
        (true, true) => match details(form, &mut errors) {
            Some(details) => Person::Details(Box::new(details)),
            None => Person::Anyone,
        },
        (true, false) => Person::Anyone,
    };
    let day = |text: &str, field: &'static str, errors: &mut Vec<FieldError>| {
        let text = text.trim();
        if text.is_empty() {
            return String::new();
        }
        match Day::parse(text) {
            Some(_) => text.to_owned(),
            None => {
                errors.push(FieldError {
                    field,
                    message: "Enter a date as YYYY-MM-DD, for example 2026-11-30".into(),
                });
                String::new()
            }
        }
    };
    let from_time = day(&form.from_date, "from_date", &mut errors);
    // The officer names the last day to include; the log's bound excludes its end.
    let to_time = day_after(&day(&form.to_date, "to_date", &mut errors));
    let break_glass = match form.break_glass.as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((
        person,
        LogSearch {
            agency: form.agency.clone(),
            system_id: form.system_id.clone(),
            practitioner_id: form.practitioner_id.clone(),
            kind: form.kind.clone(),
            decision: form.decision.clone(),
            break_glass,
            from_time,
            to_time,
            page_size: PAGE,
            page_token: form.page_token.clone(),
            ..LogSearch::default()
        },
    ))
}

/// The day after `day` (`YYYY-MM-DD`), or empty when `day` is empty.
fn day_after(day: &str) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(day, &format)
        .ok()
        .and_then(time::Date::next_day)
        .and_then(|next| next.format(&format).ok())
        .unwrap_or_default()
}

/// The demographics of the form, as identity resolution compares them.
fn details(form: &SearchForm, errors: &mut Vec<FieldError>) -> Option<PersonDetails> {
    let before = errors.len();
    if form.given_name.trim().is_empty() {
        errors.push(FieldError {
            field: "given_name",
            message: "Enter the given name".into(),
        });
    }
    if form.family_name.trim().is_empty() {
        errors.push(FieldError {
            field: "family_name",
            message: "Enter the family name".into(),
        });
    }
    let number = |text: &str| text.trim().parse::<u32>().ok();
    let date_of_birth = match (
        number(&form.dob_year),
        number(&form.dob_month),
        number(&form.dob_day),
    ) {
        (Some(year), Some(month), Some(day)) => i32::try_from(year)
            .ok()
            .zip(u8::try_from(month).ok())
            .zip(u8::try_from(day).ok())
            .and_then(|((y, m), d)| Day::from_ymd(y, m, d)),
        _ => None,
    };
    if date_of_birth.is_none() {
        errors.push(FieldError {
            field: "dob_day",
            message: "Enter a real date of birth, with day, month and year".into(),
        });
    }
    let postcode = match form.postcode.trim() {
        "" => None,
        text => match Postcode::parse(text, "postcode") {
            Ok(postcode) => Some(postcode),
            Err(_) => {
                errors.push(FieldError {
                    field: "postcode",
                    message: "Enter a real UK postcode, such as SO23 8UJ, or leave it empty".into(),
                });
                None
            }
        },
    };
    (errors.len() == before).then(|| PersonDetails {
        given_name: form.given_name.trim().to_owned(),
        family_name: form.family_name.trim().to_owned(),
        date_of_birth,
        postcode,
        ..PersonDetails::default()
    })
}

/// The search page, with or without results.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_day_named_is_included() {
        assert_eq!(day_after("2026-11-30"), "2026-12-01");
        assert_eq!(day_after("2026-12-31"), "2027-01-01");
        assert_eq!(day_after(""), "");
    }

    #[test]
    fn a_person_is_named_one_way_only() {
        let form = SearchForm {
            person: "943 476 5919".into(),
            family_name: "Carter".into(),
            ..SearchForm::default()
        };
        let errors = read_form(&form).err().unwrap_or_default();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "person");
    }

    #[test]
    fn demographics_need_names_and_a_real_date_of_birth() {
        let form = SearchForm {
            given_name: "Amy".into(),
            dob_day: "31".into(),
            dob_month: "2".into(),
            dob_year: "2025".into(),
            ..SearchForm::default()
        };
        let errors = read_form(&form).err().unwrap_or_default();
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["family_name", "dob_day"]);
    }
}

#[derive(Template)]
#[template(path = "console/search.html")]
pub struct SearchPage {
    pub layout: Layout,
    pub form: SearchForm,
    pub errors: Vec<FieldError>,
    pub agencies: Vec<Choice>,
    pub kinds: Vec<Choice>,
    pub decisions: Vec<Choice>,
    pub break_glass: Vec<Choice>,
    /// Whether a search ran (the results section is shown).
    pub searched: bool,
    /// Why a person named could not be searched for (nobody, or nobody unique).
    pub person_note: String,
    pub rows: Vec<EntryRow>,
    pub next_page_token: String,
    pub first_page: bool,
}

impl SearchPage {
    fn new(layout: Layout, form: SearchForm) -> Self {
        let agencies: Vec<&str> = Agency::ALL.iter().map(|a| a.as_str()).collect();
        let kinds: Vec<&str> = EntryKind::ALL.iter().map(|k| k.as_str()).collect();
        let decisions: Vec<&str> = Decision::ALL.iter().map(|d| d.as_str()).collect();
        SearchPage {
            agencies: choices(&agencies, &form.agency, "Any agency"),
            kinds: choices(&kinds, &form.kind, "Any kind"),
            decisions: choices(&decisions, &form.decision, "Any decision"),
            break_glass: vec![
                Choice {
                    value: String::new(),
                    label: "Either".into(),
                    selected: form.break_glass.is_empty(),
                },
                Choice {
                    value: "yes".into(),
                    label: "Break-glass only".into(),
                    selected: form.break_glass == "yes",
                },
                Choice {
                    value: "no".into(),
                    label: "Without break-glass".into(),
                    selected: form.break_glass == "no",
                },
            ],
            first_page: form.page_token.is_empty(),
            layout,
            form,
            errors: Vec::new(),
            searched: false,
            person_note: String::new(),
            rows: Vec::new(),
            next_page_token: String::new(),
        }
    }

    fn error(&self, field: &str) -> String {
        error_for(&self.errors, field)
    }

    fn caption(&self) -> String {
        let after = if self.first_page {
            ""
        } else {
            " after the previous page"
        };
        format!("{} entries{after}, oldest first", self.rows.len())
    }
}

/// The empty search form (nothing from the log is shown, so nothing is logged).
pub async fn view_search_get(officer: Officer, State(state): State<Arc<ConsoleState>>) -> Response {
    let layout = officer.layout(&state, "Search the disclosure log", Nav::Search);
    render(
        StatusCode::OK,
        &SearchPage::new(layout, SearchForm::default()),
    )
}

/// A page of results; the read is logged before it is shown.
pub async fn view_search_post(
    officer: Officer,
    State(state): State<Arc<ConsoleState>>,
    headers: HeaderMap,
    Form(form): Form<SearchForm>,
) -> Response {
    officer
        .answer(&state, Nav::Search, async {
            check_form(&state, &officer, &headers, &form.csrf_token)?;
            let layout = officer.layout(&state, "Search results", Nav::Search);
            let mut page = SearchPage::new(layout, form.clone());
            let (person, search) = match read_form(&form) {
                Ok(read) => read,
                Err(errors) => {
                    page.layout.title = "Error: Search the disclosure log".into();
                    page.errors = errors;
                    return Ok(render(StatusCode::BAD_REQUEST, &page));
                }
            };
            page.searched = true;
            let mut read = officer.read();
            let person_id = match person {
                Person::Anyone => None,
                Person::Reference(reference) => {
                    let found = state.store.find_person(&reference).await?;
                    if found.is_none() {
                        read.subject_asked = match &reference {
                            crate::domain::records::PersonRef::PersonId(id) => {
                                format!("person_id:{id}")
                            }
                            crate::domain::records::PersonRef::Identifier(identifier) => {
                                identifier.key()
                            }
                        };
                        page.person_note = "No person on record has this identifier.".into();
                    }
                    found
                }
                Person::Details(details) => {
                    let found = unique_match(&state.store, &state.rules, &details).await?;
                    read.search_candidates = found.candidates;
                    if found.person_id.is_none() {
                        read.subject_asked = "search by demographics".into();
                        page.person_note = "No single person on record matches these details \
                                            closely enough. Search by NHS number, PNC id or \
                                            person id instead."
                            .into();
                    }
                    found.person_id
                }
            };
            if !page.person_note.is_empty() {
                // Nothing is listed, but the search itself is a read of who is on record.
                read.reason = "log search: the person named is not on record".into();
                state.ledger.record_read(read, &[]).await?;
                return Ok(render(StatusCode::OK, &page));
            }
            let search = LogSearch {
                person_id: person_id.unwrap_or_default(),
                ..search
            };
            let filter = search.filter()?;
            read.subject_person_id = filter.person_id.clone().unwrap_or_default();
            let entries = state.ledger.list(read, &filter).await?;
            page.next_page_token = next_page_token(&filter, &entries);
            page.rows = entries.iter().map(EntryRow::from).collect();
            Ok(render(StatusCode::OK, &page))
        })
        .await
}
