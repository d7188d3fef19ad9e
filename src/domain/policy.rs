//! The partnership's sharing policy: which level of each category a role sees, which
//! purposes a role may use and on what lawful basis.
//!
//! The policy is two casbin files in one directory, reviewed like code:
//! [`MODEL_FILE`] (the casbin model) and [`POLICY_FILE`] (the rules). [`Policy::load`]
//! reads them through casbin, validates every rule line strictly, compiles the rules into
//! an in-memory index (so a decision at query time is one hash lookup and two array
//! indexes, never a scan of the rules or a script evaluation), and refuses to load unless
//! that index agrees with casbin's own `enforce` for every role, category and purpose of
//! the partnership-wide scope: casbin stays the source of truth for what the files mean.
//!
//! Scope: a rule applies to the whole partnership (`*`) or to one agency system id (a
//! local agreement). A system-scoped rule overrides the `*` rule for the same role and
//! category (or role and purpose), in either direction.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use casbin::{CoreApi, DefaultModel, EnforceContext, Enforcer, FileAdapter, MgmtApi, Model};
use sha2::{Digest, Sha256};

use crate::domain::records::Category;
use crate::domain::{Purpose, Role};
use crate::error::Error;

/// The casbin model file's name inside the policy directory.
pub const MODEL_FILE: &str = "sharing.conf";
/// The casbin policy (rules) file's name inside the policy directory.
pub const POLICY_FILE: &str = "sharing.csv";
/// The scope of a partnership-wide rule; any other scope is one agency system id.
pub const DEFAULT_SCOPE: &str = "*";
/// Rule id of the decision for a cell no rule covers: nothing is seen.
pub const DEFAULT_NOTHING_RULE: &str = "policy.default_nothing";
/// Rule id of every refusal of a purpose the role may not use.
pub const PURPOSE_NOT_PERMITTED_RULE: &str = "policy.purpose_not_permitted";

vocabulary! {
    /// How much of a category a role sees, in ascending order of disclosure.
    Level {
        /// Not even that such a fact exists; the answer says nothing exists to see.
        Nothing => "nothing",
        /// That such a fact exists, its category, its owning team and how to contact
        /// them, but not its content.
        Indicator => "indicator",
        /// The fact itself.
        Detail => "detail",
    }
}

/// The level one role sees of one category at one agency system, and the rule that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellDecision<'p> {
    /// What the role sees of the category.
    pub level: Level,
    /// The rule id for the disclosure log: a policy rule's id, or
    /// [`DEFAULT_NOTHING_RULE`] when no rule covers the cell.
    pub rule_id: &'p str,
}

/// Permission to ask for a purpose, with the rule and lawful basis the disclosure log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurposeGrant<'p> {
    /// The id of the permitting rule, e.g. `purpose.gp.child_safeguarding`.
    pub rule_id: &'p str,
    /// The lawful basis in words, e.g. "UK GDPR Art 6(1)(e); Crime and Disorder Act 1998 s115".
    pub lawful_basis: &'p str,
}

/// Why a sharing policy cannot be loaded; each message names the file, and the line where
/// there is one.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A policy file cannot be read (the I/O error is the source).
    #[error("cannot read sharing policy file {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A line of a policy file is wrong.
    #[error("{path} line {line}: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A policy file is wrong as a whole, or casbin cannot read it.
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    /// A file changed between casbin reading it and the version being taken.
    #[error("{path} changed while the sharing policy was loading; load it again")]
    Changed { path: PathBuf },
}

/// The loaded, validated and compiled sharing policy. Immutable: a new policy replaces it
/// whole (see [`PolicyHolder`]).
pub struct Policy {
    version: String,
    default_scope: Scope,
    /// Local agreements, by agency system id; only systems with at least one local rule.
    local_scopes: HashMap<Box<str>, Scope>,
    cell_rules: Vec<CellRule>,
    purpose_rules: Vec<PurposeRule>,
}

const ROLES: usize = Role::ALL.len();
const CATEGORIES: usize = Category::ALL.len();
const PURPOSES: usize = Purpose::ALL.len();

/// The rules of one scope, indexed by enum discriminant; each entry indexes
/// `Policy::cell_rules` or `Policy::purpose_rules`.
struct Scope {
    cells: [[Option<u32>; CATEGORIES]; ROLES],
    purposes: [[Option<u32>; PURPOSES]; ROLES],
}

impl Scope {
    fn empty() -> Self {
        Scope {
            cells: [[None; CATEGORIES]; ROLES],
            purposes: [[None; PURPOSES]; ROLES],
        }
    }
}

struct CellRule {
    id: Box<str>,
    level: Level,
}

struct PurposeRule {
    id: Box<str>,
    permitted: bool,
    lawful_basis: Box<str>,
}

impl Policy {
    /// Loads [`MODEL_FILE`] and [`POLICY_FILE`] from `dir` through casbin, validates every
    /// rule, compiles the index and checks it against casbin's own answers. Any problem is
    /// an error naming the file and line; nothing is partly loaded.
    pub async fn load(dir: &Path) -> Result<Policy, PolicyError> {
        let model_path = dir.join(MODEL_FILE);
        let policy_path = dir.join(POLICY_FILE);
        let model_bytes = read(&model_path).await?;
        let policy_bytes = read(&policy_path).await?;
        let version = policy_version(&model_bytes, &policy_bytes);

        // Our own parse gives line numbers and strict checks; casbin's must then agree.
        let model_text = utf8(&model_path, &model_bytes)?;
        let rules = parse_rules(&policy_path, utf8(&policy_path, &policy_bytes)?)?;

        let model = DefaultModel::from_file(&model_path)
            .await
            .map_err(|e| casbin_error(&model_path, e))?;
        check_model(&model_path, model_text, &model)?;
        let enforcer = Enforcer::new(model, FileAdapter::new(policy_path.clone()))
            .await
            .map_err(|e| casbin_error(&policy_path, e))?;
        check_rows_agree(&policy_path, &rules, &enforcer)?;

        // The version must name exactly the bytes casbin read.
        if read(&model_path).await? != model_bytes {
            return Err(PolicyError::Changed { path: model_path });
        }
        if read(&policy_path).await? != policy_bytes {
            return Err(PolicyError::Changed { path: policy_path });
        }

        let policy = compile(version, &rules);
        // casbin evaluates a script per rule per question; keep that off the async workers.
        tokio::task::spawn_blocking(move || {
            check_default_scope(&policy_path, &rules, &policy, &enforcer)?;
            Ok(policy)
        })
        .await
        .map_err(|e| PolicyError::File {
            path: dir.to_path_buf(),
            message: format!("the check against casbin did not finish: {e}"),
        })?
    }

    /// The policy version every disclosure records: SHA-256, in lowercase hex, of
    ///
    /// ```text
    /// "sharing.conf\n" <byte length of sharing.conf, decimal> "\n" <sharing.conf bytes>
    /// "sharing.csv\n"  <byte length of sharing.csv, decimal>  "\n" <sharing.csv bytes>
    /// ```
    ///
    /// so an IG officer can recompute it from the files alone, e.g. in `policies/`:
    /// `{ printf 'sharing.conf\n%d\n' $(stat -c%s sharing.conf); cat sharing.conf;
    /// printf 'sharing.csv\n%d\n' $(stat -c%s sharing.csv); cat sharing.csv; } | sha256sum`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The level `role` sees of `category` when asking from agency system `system`: the
    /// system's local rule if it has one, else the partnership-wide rule, else nothing
    /// under [`DEFAULT_NOTHING_RULE`].
    pub fn level(&self, system: &str, role: Role, category: Category) -> CellDecision<'_> {
        let (r, c) = (role as usize, category as usize);
        let rule = self
            .local_scopes
            .get(system)
            .and_then(|scope| scope.cells[r][c])
            .or(self.default_scope.cells[r][c]);
        match rule {
            Some(index) => {
                let rule = &self.cell_rules[index as usize];
                CellDecision {
                    level: rule.level,
                    rule_id: &rule.id,
                }
            }
            None => CellDecision {
                level: Level::Nothing,
                rule_id: DEFAULT_NOTHING_RULE,
            },
        }
    }

    /// Whether `role` may ask for `purpose` from agency system `system` (local rule first,
    /// then the partnership-wide rule). A purpose with no permitting rule is
    /// `PermissionDenied` by [`PURPOSE_NOT_PERMITTED_RULE`], naming the purposes the role
    /// may use.
    pub fn purpose(
        &self,
        system: &str,
        role: Role,
        purpose: Purpose,
    ) -> Result<PurposeGrant<'_>, Error> {
        match self.purpose_rule(system, role, purpose) {
            Some(rule) if rule.permitted => Ok(PurposeGrant {
                rule_id: &rule.id,
                lawful_basis: &rule.lawful_basis,
            }),
            rule => Err(self.purpose_refusal(system, role, purpose, rule)),
        }
    }

    /// The purposes `role` may use from agency system `system`, in vocabulary order.
    pub fn permitted_purposes(&self, system: &str, role: Role) -> Vec<Purpose> {
        Purpose::ALL
            .iter()
            .copied()
            .filter(|purpose| {
                self.purpose_rule(system, role, *purpose)
                    .is_some_and(|rule| rule.permitted)
            })
            .collect()
    }

    /// The agency system ids that have local rules, sorted.
    pub fn local_systems(&self) -> Vec<&str> {
        let mut systems: Vec<&str> = self.local_scopes.keys().map(|s| &**s).collect();
        systems.sort_unstable();
        systems
    }

    /// How many rule lines the policy holds.
    pub fn rule_count(&self) -> usize {
        self.cell_rules.len() + self.purpose_rules.len()
    }

    fn purpose_rule(&self, system: &str, role: Role, purpose: Purpose) -> Option<&PurposeRule> {
        let (r, p) = (role as usize, purpose as usize);
        self.local_scopes
            .get(system)
            .and_then(|scope| scope.purposes[r][p])
            .or(self.default_scope.purposes[r][p])
            .map(|index| &self.purpose_rules[index as usize])
    }

    #[cold]
    fn purpose_refusal(
        &self,
        system: &str,
        role: Role,
        purpose: Purpose,
        rule: Option<&PurposeRule>,
    ) -> Error {
        let permitted = self.permitted_purposes(system, role);
        let may_use = if permitted.is_empty() {
            "none".to_owned()
        } else {
            permitted
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let withdrawn = match rule {
            Some(rule) => format!(" (refused by rule `{}`)", rule.id),
            None => String::new(),
        };
        Error::PermissionDenied {
            rule: PURPOSE_NOT_PERMITTED_RULE,
            reason: format!(
                "role `{role}` may not ask for purpose `{purpose}` from system `{system}`{withdrawn}; \
                 the purposes it may use are: {may_use}"
            ),
        }
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("version", &self.version)
            .field("rules", &self.rule_count())
            .field("local_systems", &self.local_scopes.len())
            .finish()
    }
}

/// The policy in force, shared by every task. Readers take a cheap `Arc` clone; a reload
/// swaps the whole policy at once, so a request sees one version from start to end.
#[derive(Debug)]
pub struct PolicyHolder {
    current: RwLock<Arc<Policy>>,
    /// One reload at a time, so two racing reloads cannot leave the older files in force.
    reloading: tokio::sync::Mutex<()>,
}

impl PolicyHolder {
    /// Holds `policy` as the policy in force.
    pub fn new(policy: Policy) -> Self {
        PolicyHolder {
            current: RwLock::new(Arc::new(policy)),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// Loads the policy in `dir` and holds it.
    pub async fn load(dir: &Path) -> Result<Self, PolicyError> {
        Ok(Self::new(Policy::load(dir).await?))
    }

    /// The policy in force now; keep the returned `Arc` for the whole request.
    pub fn current(&self) -> Arc<Policy> {
        // The lock only guards an Arc swap, which cannot be left half done.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Loads the policy in `dir` and, only if it loads and validates, puts it in force and
    /// returns its version. On error the policy in force stays as it was, and the error
    /// says why the new files were rejected.
    pub async fn reload(&self, dir: &Path) -> Result<String, PolicyError> {
        let _one_at_a_time = self.reloading.lock().await;
        let policy = Policy::load(dir).await?;
        Ok(self.install(policy))
    }

    /// Puts an already loaded and validated `policy` in force and returns its version.
    pub fn install(&self, policy: Policy) -> String {
        let policy = Arc::new(policy);
        let version = policy.version().to_owned();
        let previous = std::mem::replace(
            &mut *self.current.write().unwrap_or_else(PoisonError::into_inner),
            policy,
        );
        tracing::info!(
            previous_version = previous.version(),
            policy_version = %version,
            "sharing policy in force"
        );
        version
    }
}

/// One validated line of [`POLICY_FILE`].
struct RuleLine {
    line: usize,
    /// The fields after the rule type, exactly as casbin reads them.
    fields: Vec<String>,
    rule: Rule,
}

enum Rule {
    Cell {
        system: String,
        role: Role,
        category: Category,
        level: Level,
    },
    Purpose {
        system: String,
        role: Role,
        purpose: Purpose,
        permitted: bool,
        lawful_basis: String,
    },
}

impl Rule {
    fn system(&self) -> &str {
        match self {
            Rule::Cell { system, .. } | Rule::Purpose { system, .. } => system,
        }
    }
}

/// The loader's own reading of a policy file's text, before and apart from casbin: every
/// line parsed and checked (ids, roles, categories, purposes, levels, duplicates), then
/// compiled into the index [`Policy::load`] builds. Returns the number of rules. Exposed
/// so the parser can be fuzzed; loading a policy goes through [`Policy::load`].
pub fn check_rules_text(text: &str) -> Result<usize, PolicyError> {
    let rules = parse_rules(Path::new(POLICY_FILE), text)?;
    let policy = compile(policy_version(b"", text.as_bytes()), &rules);
    Ok(policy.rule_count())
}

async fn read(path: &Path) -> Result<Vec<u8>, PolicyError> {
    tokio::fs::read(path)
        .await
        .map_err(|source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        })
}

fn utf8<'b>(path: &Path, bytes: &'b [u8]) -> Result<&'b str, PolicyError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = &bytes[..e.valid_up_to()];
        PolicyError::Line {
            path: path.to_path_buf(),
            line: valid.iter().filter(|b| **b == b'\n').count() + 1,
            message: "is not UTF-8 text".to_owned(),
        }
    })
}

fn casbin_error(path: &Path, error: casbin::Error) -> PolicyError {
    PolicyError::File {
        path: path.to_path_buf(),
        message: format!("casbin cannot load it: {error}"),
    }
}

/// See [`Policy::version`].
fn policy_version(model: &[u8], policy: &[u8]) -> String {
    let mut hash = Sha256::new();
    for (name, bytes) in [(MODEL_FILE, model), (POLICY_FILE, policy)] {
        hash.update(format!("{name}\n{}\n", bytes.len()).as_bytes());
        hash.update(bytes);
    }
    hex::encode(hash.finalize())
}

/// The request and policy definitions the compiler reads fields by, and the one effect it
/// understands (casbin panics on effects it does not know, so we check first).
const DEFINITIONS: &[(&str, &str, &[&str])] = &[
    ("r", "r", &["sys", "role", "category", "level"]),
    ("r", "r2", &["sys", "role", "purpose"]),
    ("p", "p", &["id", "sys", "role", "category", "level"]),
    (
        "p",
        "p2",
        &["id", "sys", "role", "purpose", "decision", "basis"],
    ),
];
const EFFECT: &str = "some(where (p_eft == allow))";

fn check_model(path: &Path, text: &str, model: &DefaultModel) -> Result<(), PolicyError> {
    let sections = model.get_model();
    let problem = |key: &str, message: String| match definition_line(text, key) {
        Some(line) => PolicyError::Line {
            path: path.to_path_buf(),
            line,
            message,
        },
        None => PolicyError::File {
            path: path.to_path_buf(),
            message,
        },
    };
    for (section, key, fields) in DEFINITIONS {
        let expected: Vec<String> = fields.iter().map(|f| format!("{key}_{f}")).collect();
        match sections.get(*section).and_then(|s| s.get(*key)) {
            Some(assertion) if assertion.tokens == expected => {}
            _ => {
                return Err(problem(
                    key,
                    format!("`{key}` must be defined as `{key} = {}`", fields.join(", ")),
                ));
            }
        }
    }
    for key in ["e", "e2"] {
        match sections.get("e").and_then(|s| s.get(key)) {
            Some(assertion) if assertion.value == EFFECT => {}
            _ => {
                return Err(problem(
                    key,
                    format!("`{key}` must be `some(where (p.eft == allow))`"),
                ));
            }
        }
    }
    for key in ["m", "m2"] {
        if sections.get("m").and_then(|s| s.get(key)).is_none() {
            return Err(problem(key, format!("matcher `{key}` is missing")));
        }
    }
    let known = ["r", "r2", "p", "p2", "e", "e2", "m", "m2"];
    for (section, assertions) in sections {
        for key in assertions.keys() {
            if !known.contains(&key.as_str()) {
                return Err(problem(
                    key,
                    format!(
                        "`{key}` ([{}]) is not part of the sharing model; \
                         the gateway compiles only {}",
                        section_name(section),
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The model-file section heading for casbin's section letter.
fn section_name(section: &str) -> &str {
    match section {
        "r" => "request_definition",
        "p" => "policy_definition",
        "g" => "role_definition",
        "e" => "policy_effect",
        "m" => "matchers",
        other => other,
    }
}

/// The line on which `key = ...` is defined in a casbin model file.
fn definition_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            line.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|index| index + 1)
}

fn parse_rules(path: &Path, text: &str) -> Result<Vec<RuleLine>, PolicyError> {
    let mut rules = Vec::new();
    let mut cells: HashMap<(String, Role, Category), usize> = HashMap::new();
    let mut purposes: HashMap<(String, Role, Purpose), usize> = HashMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let at = |message: String| PolicyError::Line {
            path: path.to_path_buf(),
            line,
            message,
        };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let rule = parse_rule(trimmed).map_err(at)?;
        let (first, what) = match &rule.rule {
            Rule::Cell {
                system,
                role,
                category,
                ..
            } => (
                match cells.entry((system.clone(), *role, *category)) {
                    Entry::Occupied(seen) => Some(*seen.get()),
                    Entry::Vacant(slot) => {
                        slot.insert(line);
                        None
                    }
                },
                format!("role `{role}` and category `{category}`"),
            ),
            Rule::Purpose {
                system,
                role,
                purpose,
                ..
            } => (
                match purposes.entry((system.clone(), *role, *purpose)) {
                    Entry::Occupied(seen) => Some(*seen.get()),
                    Entry::Vacant(slot) => {
                        slot.insert(line);
                        None
                    }
                },
                format!("role `{role}` and purpose `{purpose}`"),
            ),
        };
        if let Some(first) = first {
            return Err(at(format!(
                "a second rule for system `{}`, {what}: line {first} already decides it",
                rule.rule.system()
            )));
        }
        rules.push(RuleLine { line, ..rule });
    }
    if rules.is_empty() {
        return Err(PolicyError::File {
            path: path.to_path_buf(),
            message: "holds no rules; refusing to load a policy that would refuse everything"
                .to_owned(),
        });
    }
    Ok(rules)
}

/// Parses one non-comment line; the error message is for the line's position.
fn parse_rule(line: &str) -> Result<RuleLine, String> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    if let Some(position) = fields.iter().position(|f| f.is_empty()) {
        return Err(format!("field {} is empty", position + 1));
    }
    if line.contains('"') {
        return Err(
            "quotes are not allowed: casbin and the gateway must read every \
                    field identically, and no field may contain a comma"
                .to_owned(),
        );
    }
    let (ptype, rest) = fields
        .split_first()
        .expect("split yields at least one field");
    let rule = match *ptype {
        "p" => {
            let [id, system, role, category, level] = arity(rest, "p", DEFINITIONS[2].2)?;
            let system = parse_system(system)?;
            let role = word(role, "role", Role::parse, Role::expected)?;
            let category = word(category, "category", Category::parse, Category::expected)?;
            let level = word(level, "level", Level::parse, Level::expected)?;
            expect_id(id, "matrix", role.as_str(), category.as_str(), system)?;
            if role == Role::IgOfficer && level != Level::Nothing {
                return Err(
                    "ig_officer may see nothing of any case category: IG officers \
                            read the disclosure log, never case data"
                        .to_owned(),
                );
            }
            if role == Role::IdentitySteward && level != Level::Nothing {
                return Err(
                    "identity_steward may see nothing of any case category: stewards \
                            see identity details through the identity service only"
                        .to_owned(),
                );
            }
            Rule::Cell {
                system: system.to_owned(),
                role,
                category,
                level,
            }
        }
        "p2" => {
            let [id, system, role, purpose, decision, basis] = arity(rest, "p2", DEFINITIONS[3].2)?;
            let system = parse_system(system)?;
            let role = word(role, "role", Role::parse, Role::expected)?;
            let purpose = word(purpose, "purpose", Purpose::parse, Purpose::expected)?;
            expect_id(id, "purpose", role.as_str(), purpose.as_str(), system)?;
            let permitted = match decision {
                "permit" => true,
                "refuse" => false,
                other => {
                    return Err(format!(
                        "unknown decision `{other}` (expected one of: permit, refuse)"
                    ));
                }
            };
            match (permitted, basis) {
                (true, "-") => {
                    return Err("a permitting rule must name its lawful basis in words".to_owned());
                }
                (false, basis) if basis != "-" => {
                    return Err(format!(
                        "a refusing rule has no lawful basis: write `-`, not `{basis}`"
                    ));
                }
                _ => {}
            }
            Rule::Purpose {
                system: system.to_owned(),
                role,
                purpose,
                permitted,
                lawful_basis: basis.to_owned(),
            }
        }
        other => {
            return Err(format!(
                "unknown rule type `{other}` (expected p for the sharing matrix or p2 for a purpose)"
            ));
        }
    };
    Ok(RuleLine {
        line: 0,
        fields: rest.iter().map(|f| (*f).to_owned()).collect(),
        rule,
    })
}

fn arity<'a, const N: usize>(
    fields: &[&'a str],
    ptype: &str,
    names: &[&str],
) -> Result<[&'a str; N], String> {
    <[&str; N]>::try_from(fields).map_err(|_| {
        format!(
            "a {ptype} rule has {N} fields after `{ptype}` ({}), not {}",
            names.join(", "),
            fields.len()
        )
    })
}

fn word<T>(
    text: &str,
    what: &str,
    parse: fn(&str) -> Option<T>,
    expected: fn() -> String,
) -> Result<T, String> {
    parse(text).ok_or_else(|| format!("unknown {what} `{text}` (expected one of: {})", expected()))
}

fn parse_system(text: &str) -> Result<&str, String> {
    let valid = text == DEFAULT_SCOPE
        || text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(text)
    } else {
        Err(format!(
            "system `{text}` is neither `*` nor an agency system id \
             (letters, digits, `-`, `_` and `.`)"
        ))
    }
}

fn expect_id(id: &str, kind: &str, role: &str, what: &str, system: &str) -> Result<(), String> {
    let expected = if system == DEFAULT_SCOPE {
        format!("{kind}.{role}.{what}")
    } else {
        format!("{kind}.{role}.{what}@{system}")
    };
    if id == expected {
        Ok(())
    } else {
        Err(format!(
            "rule id `{id}` should be `{expected}`: ids are derived from the rule's role, \
             {} and system so they stay stable",
            if kind == "matrix" {
                "category"
            } else {
                "purpose"
            }
        ))
    }
}

/// casbin read the same rules, in the same order, field for field.
fn check_rows_agree(
    path: &Path,
    rules: &[RuleLine],
    enforcer: &Enforcer,
) -> Result<(), PolicyError> {
    for (ptype, is_cell) in [("p", true), ("p2", false)] {
        let ours: Vec<&RuleLine> = rules
            .iter()
            .filter(|r| matches!(r.rule, Rule::Cell { .. }) == is_cell)
            .collect();
        let theirs = enforcer.get_named_policy(ptype);
        for (index, rule) in ours.iter().enumerate() {
            if theirs.get(index) != Some(&rule.fields) {
                return Err(PolicyError::Line {
                    path: path.to_path_buf(),
                    line: rule.line,
                    message: format!(
                        "casbin reads this {ptype} rule as {:?}: the gateway and casbin \
                         must read every rule identically",
                        theirs.get(index)
                    ),
                });
            }
        }
        if theirs.len() != ours.len() {
            return Err(PolicyError::File {
                path: path.to_path_buf(),
                message: format!(
                    "casbin reads {} {ptype} rules where the gateway reads {}",
                    theirs.len(),
                    ours.len()
                ),
            });
        }
    }
    Ok(())
}

fn compile(version: String, rules: &[RuleLine]) -> Policy {
    let mut policy = Policy {
        version,
        default_scope: Scope::empty(),
        local_scopes: HashMap::new(),
        cell_rules: Vec::new(),
        purpose_rules: Vec::new(),
    };
    for RuleLine { fields, rule, .. } in rules {
        let id: Box<str> = fields[0].as_str().into();
        let system = rule.system();
        let scope = if system == DEFAULT_SCOPE {
            &mut policy.default_scope
        } else {
            policy
                .local_scopes
                .entry(system.into())
                .or_insert_with(Scope::empty)
        };
        match rule {
            Rule::Cell {
                role,
                category,
                level,
                ..
            } => {
                scope.cells[*role as usize][*category as usize] = Some(index(&policy.cell_rules));
                policy.cell_rules.push(CellRule { id, level: *level });
            }
            Rule::Purpose {
                role,
                purpose,
                permitted,
                lawful_basis,
                ..
            } => {
                scope.purposes[*role as usize][*purpose as usize] =
                    Some(index(&policy.purpose_rules));
                policy.purpose_rules.push(PurposeRule {
                    id,
                    permitted: *permitted,
                    lawful_basis: lawful_basis.as_str().into(),
                });
            }
        }
    }
    policy
}

fn index<T>(rules: &[T]) -> u32 {
    u32::try_from(rules.len()).expect("fewer than 2^32 rules")
}

/// For every role, category and purpose of the partnership-wide scope, the compiled index
/// and casbin's `enforce` give the same answer. A (role, category, purpose) decision is
/// "refused" or the cell's level, so checking every (role, purpose) and every (role,
/// category, level) checks every triple.
fn check_default_scope(
    path: &Path,
    rules: &[RuleLine],
    policy: &Policy,
    enforcer: &Enforcer,
) -> Result<(), PolicyError> {
    let line_of = |wanted: &str| {
        rules
            .iter()
            .find(|r| r.rule.system() == DEFAULT_SCOPE && r.fields[0] == wanted)
            .map(|r| r.line)
    };
    let disagree = |rule_id: &str, question: String, casbin: bool| {
        let message = format!(
            "the compiled policy and casbin disagree on {question}: casbin answers {}; \
             check the matchers in {MODEL_FILE}",
            if casbin { "yes" } else { "no" }
        );
        match line_of(rule_id) {
            Some(line) => PolicyError::Line {
                path: path.to_path_buf(),
                line,
                message,
            },
            None => PolicyError::File {
                path: path.to_path_buf(),
                message,
            },
        }
    };
    let enforce_error = |e: casbin::Error| PolicyError::File {
        path: path.with_file_name(MODEL_FILE),
        message: format!("casbin cannot evaluate the matchers: {e}"),
    };
    for role in Role::ALL {
        for category in Category::ALL {
            let r = *role as usize;
            let compiled = policy.default_scope.cells[r][*category as usize]
                .map(|i| &policy.cell_rules[i as usize]);
            for level in Level::ALL {
                let casbin = enforcer
                    .enforce((
                        DEFAULT_SCOPE,
                        role.as_str(),
                        category.as_str(),
                        level.as_str(),
                    ))
                    .map_err(enforce_error)?;
                if casbin != compiled.is_some_and(|rule| rule.level == *level) {
                    return Err(disagree(
                        &format!("matrix.{role}.{category}"),
                        format!("whether `{role}` sees `{category}` at level `{level}`"),
                        casbin,
                    ));
                }
            }
        }
        for purpose in Purpose::ALL {
            let compiled = policy.default_scope.purposes[*role as usize][*purpose as usize]
                .is_some_and(|i| policy.purpose_rules[i as usize].permitted);
            let casbin = enforcer
                .enforce_with_context(
                    EnforceContext::new("2"),
                    (DEFAULT_SCOPE, role.as_str(), purpose.as_str()),
                )
                .map_err(enforce_error)?;
            if casbin != compiled {
                return Err(disagree(
                    &format!("purpose.{role}.{purpose}"),
                    format!("whether `{role}` may ask for `{purpose}`"),
                    casbin,
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_policies() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
    }

    #[tokio::test]
    async fn the_text_check_reads_a_policy_as_the_loader_does() {
        let text = std::fs::read_to_string(repo_policies().join(POLICY_FILE)).expect("policy");
        let loaded = Policy::load(&repo_policies()).await.expect("loads");
        assert_eq!(
            check_rules_text(&text).expect("parses"),
            loaded.rule_count()
        );
        let error = check_rules_text("p, x\n").expect_err("one field is not a rule");
        assert!(
            matches!(error, PolicyError::Line { line: 1, .. }),
            "{error}"
        );
        let twice = text.lines().find(|l| l.starts_with("p,")).expect("a rule");
        let error = check_rules_text(&format!("{twice}\n{twice}\n")).expect_err("duplicate");
        assert!(
            matches!(error, PolicyError::Line { line: 2, .. }),
            "{error}"
        );
    }

    /// A copy of the repository's policy files in a fresh directory, with `extra` appended
    /// to the rules.
    fn policy_dir(extra: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("safegate-policy-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let repo = repo_policies();
        std::fs::copy(repo.join(MODEL_FILE), dir.join(MODEL_FILE)).expect("copy model");
        let rules = std::fs::read_to_string(repo.join(POLICY_FILE)).expect("read rules");
        std::fs::write(dir.join(POLICY_FILE), format!("{rules}{extra}")).expect("write rules");
        dir
    }

    async fn load_error(extra: &str) -> String {
        let dir = policy_dir(extra);
        let error = Policy::load(&dir)
            .await
            .expect_err("the policy must not load");
        std::fs::remove_dir_all(dir).ok();
        error.to_string()
    }

    #[tokio::test]
    async fn the_repository_policy_loads_and_encodes_the_matrix() {
        let policy = Policy::load(&repo_policies()).await.expect("policy loads");
        assert_eq!(policy.version().len(), 64);
        assert_eq!(policy.rule_count(), 126);

        let cell = policy.level("health-visiting", Role::HealthVisitor, Category::Iom);
        assert_eq!(cell.level, Level::Indicator);
        assert_eq!(cell.rule_id, "matrix.health_visitor.iom");
        let cell = policy.level("nursery", Role::SchoolDsl, Category::Iom);
        assert_eq!(cell.level, Level::Nothing);
        assert_eq!(cell.rule_id, "matrix.school_dsl.iom");
        let cell = policy.level("ig-office", Role::IgOfficer, Category::Person);
        assert_eq!(cell.level, Level::Nothing);

        let grant = policy
            .purpose("gp-practice", Role::Gp, Purpose::ChildSafeguarding)
            .expect("gp may safeguard");
        assert_eq!(grant.rule_id, "purpose.gp.child_safeguarding");
        assert!(grant.lawful_basis.contains("DPA 2018 Sch 1 para 18"));
        let grant = policy
            .purpose("police-iom", Role::IomOfficer, Purpose::OrderEnforcement)
            .expect("police may enforce orders");
        assert!(
            grant
                .lawful_basis
                .contains("Crime and Disorder Act 1998 s115")
        );
        let grant = policy
            .purpose("ig-office", Role::IgOfficer, Purpose::Audit)
            .expect("IG may audit");
        assert!(grant.lawful_basis.contains("DPA 2018 s62"));
    }

    #[tokio::test]
    async fn the_version_is_the_documented_hash_of_both_files() {
        let dir = repo_policies();
        let policy = Policy::load(&dir).await.expect("policy loads");
        let model = std::fs::read(dir.join(MODEL_FILE)).expect("model");
        let rules = std::fs::read(dir.join(POLICY_FILE)).expect("rules");
        let mut framed = format!("sharing.conf\n{}\n", model.len()).into_bytes();
        framed.extend_from_slice(&model);
        framed.extend_from_slice(format!("sharing.csv\n{}\n", rules.len()).as_bytes());
        framed.extend_from_slice(&rules);
        assert_eq!(policy.version(), hex::encode(Sha256::digest(&framed)));

        let changed = Policy::load(&policy_dir("\n")).await.expect("loads");
        assert_ne!(changed.version(), policy.version());
    }

    #[tokio::test]
    async fn purposes_a_role_may_not_use_are_refused_by_the_purpose_rule() {
        let policy = Policy::load(&repo_policies()).await.expect("policy loads");
        for (role, purpose) in [
            (Role::Gp, Purpose::OffenderManagement),
            (Role::SchoolDsl, Purpose::OrderEnforcement),
            (Role::IgOfficer, Purpose::ChildSafeguarding),
            (Role::IomOfficer, Purpose::Audit),
        ] {
            match policy.purpose("any-system", role, purpose) {
                Err(Error::PermissionDenied { rule, reason }) => {
                    assert_eq!(rule, PURPOSE_NOT_PERMITTED_RULE);
                    assert!(reason.contains(&format!("`{role}`")), "{reason}");
                    assert!(reason.contains(&format!("`{purpose}`")), "{reason}");
                }
                other => panic!("{role} asking for {purpose}: {other:?}"),
            }
        }
        let Err(Error::PermissionDenied { reason, .. }) =
            policy.purpose("gp-practice", Role::Gp, Purpose::Audit)
        else {
            panic!("gp may not audit");
        };
        assert!(
            reason.ends_with("the purposes it may use are: child_safeguarding"),
            "{reason}"
        );
        assert_eq!(
            policy.permitted_purposes("probation", Role::OffenderManager),
            [
                Purpose::ChildSafeguarding,
                Purpose::OffenderManagement,
                Purpose::OrderEnforcement
            ]
        );
    }

    #[tokio::test]
    async fn a_system_scoped_rule_overrides_the_default_for_that_system_only() {
        let dir = policy_dir(
            "p, matrix.school_dsl.iom@nursery, nursery, school_dsl, iom, indicator\n\
             p, matrix.gp.court_order@gp-practice, gp-practice, gp, court_order, nothing\n\
             p2, purpose.offender_manager.order_enforcement@probation, probation, offender_manager, order_enforcement, refuse, -\n\
             p2, purpose.school_dsl.audit@nursery, nursery, school_dsl, audit, permit, local audit agreement\n",
        );
        let policy = Policy::load(&dir).await.expect("policy loads");
        std::fs::remove_dir_all(dir).ok();
        assert_eq!(
            policy.local_systems(),
            ["gp-practice", "nursery", "probation"]
        );

        let local = policy.level("nursery", Role::SchoolDsl, Category::Iom);
        assert_eq!(
            (local.level, local.rule_id),
            (Level::Indicator, "matrix.school_dsl.iom@nursery")
        );
        let elsewhere = policy.level("school-2", Role::SchoolDsl, Category::Iom);
        assert_eq!(
            (elsewhere.level, elsewhere.rule_id),
            (Level::Nothing, "matrix.school_dsl.iom")
        );
        // A local rule lowers a level too, and leaves the system's other cells alone.
        let lowered = policy.level("gp-practice", Role::Gp, Category::CourtOrder);
        assert_eq!(lowered.level, Level::Nothing);
        let untouched = policy.level("gp-practice", Role::Gp, Category::LegalStatus);
        assert_eq!(
            (untouched.level, untouched.rule_id),
            (Level::Detail, "matrix.gp.legal_status")
        );

        let Err(Error::PermissionDenied { rule, reason }) = policy.purpose(
            "probation",
            Role::OffenderManager,
            Purpose::OrderEnforcement,
        ) else {
            panic!("a local rule withdraws order enforcement at probation");
        };
        assert_eq!(rule, PURPOSE_NOT_PERMITTED_RULE);
        assert!(reason.contains("purpose.offender_manager.order_enforcement@probation"));
        assert!(
            policy
                .purpose(
                    "probation-2",
                    Role::OffenderManager,
                    Purpose::OrderEnforcement
                )
                .is_ok()
        );
        let grant = policy
            .purpose("nursery", Role::SchoolDsl, Purpose::Audit)
            .expect("granted locally");
        assert_eq!(grant.rule_id, "purpose.school_dsl.audit@nursery");
        assert_eq!(grant.lawful_basis, "local audit agreement");
    }

    #[tokio::test]
    async fn a_cell_without_any_rule_is_nothing_under_the_default_rule() {
        let dir = policy_dir("");
        let rules = std::fs::read_to_string(dir.join(POLICY_FILE)).expect("rules");
        let without: String = rules
            .lines()
            .filter(|line| !line.starts_with("p, matrix.gp.iom,"))
            .map(|line| format!("{line}\n"))
            .collect();
        std::fs::write(dir.join(POLICY_FILE), without).expect("write");
        let policy = Policy::load(&dir).await.expect("policy loads");
        std::fs::remove_dir_all(dir).ok();
        let cell = policy.level("gp-practice", Role::Gp, Category::Iom);
        assert_eq!(
            (cell.level, cell.rule_id),
            (Level::Nothing, DEFAULT_NOTHING_RULE)
        );
    }

    #[tokio::test]
    async fn every_malformed_line_is_an_error_naming_the_file_and_line() {
        let first_extra_line = std::fs::read_to_string(repo_policies().join(POLICY_FILE))
            .expect("rules")
            .lines()
            .count()
            + 1;
        let at = format!("sharing.csv line {first_extra_line}: ");
        for (extra, expected) in [
            (
                "p, matrix.gp.iom@x, x, gp, iom, detail, extra\n",
                "has 5 fields",
            ),
            (
                "p, matrix.doctor.iom@x, x, doctor, iom, detail\n",
                "unknown role `doctor`",
            ),
            (
                "p, matrix.gp.dna@x, x, gp, dna, detail\n",
                "unknown category `dna`",
            ),
            (
                "p, matrix.gp.iom@x, x, gp, iom, some\n",
                "unknown level `some`",
            ),
            (
                "p2, purpose.gp.research@x, x, gp, research, permit, consent\n",
                "unknown purpose `research`",
            ),
            (
                "p2, purpose.gp.audit@x, x, gp, audit, allow, b\n",
                "unknown decision `allow`",
            ),
            (
                "p2, purpose.gp.audit@x, x, gp, audit, permit, -\n",
                "lawful basis",
            ),
            (
                "p, matrix.gp.iom, x, gp, iom, detail\n",
                "should be `matrix.gp.iom@x`",
            ),
            (
                "p, matrix.gp.iom, *, gp, iom, detail\n",
                "already decides it",
            ),
            (
                "p2, purpose.gp.child_safeguarding, *, gp, child_safeguarding, permit, b\n",
                "already decides it",
            ),
            ("g, alice, admin\n", "unknown rule type `g`"),
            (
                "p, \"matrix.gp.iom@x\", x, gp, iom, detail\n",
                "quotes are not allowed",
            ),
            ("p, matrix.gp.iom@x, x, gp, iom, \n", "field 6 is empty"),
            (
                "p, matrix.ig_officer.iom@x, x, ig_officer, iom, indicator\n",
                "never case data",
            ),
            (
                "p, matrix.gp.iom@a b, a b, gp, iom, detail\n",
                "neither `*` nor",
            ),
        ] {
            let message = load_error(extra).await;
            assert!(message.contains(&at), "{extra}: {message}");
            assert!(message.contains(expected), "{extra}: {message}");
        }
    }

    #[tokio::test]
    async fn a_model_the_compiler_does_not_understand_is_refused() {
        for (from, to, expected) in [
            (
                "p = id, sys, role, category, level",
                "p = sys, role, category, level",
                "sharing.conf line",
            ),
            (
                "e2 = some(where (p.eft == allow))",
                "e2 = !some(where (p.eft == deny))",
                "`e2` must be",
            ),
            (
                "[matchers]",
                "[role_definition]\ng = _, _\n\n[matchers]",
                "not part of the sharing model",
            ),
            // casbin's own answer disagrees with the compiled index: the matcher ignores level.
            (
                "&& r.level == p.level",
                "",
                "disagree on whether `iom_officer` sees `person` at level `nothing`",
            ),
            (
                "&& p2.decision == \"permit\"",
                "&& p2.decision == \"refuse\"",
                "disagree on whether `iom_officer` may ask for `child_safeguarding`",
            ),
        ] {
            let dir = policy_dir("");
            let model = std::fs::read_to_string(dir.join(MODEL_FILE)).expect("model");
            assert!(model.contains(from), "{from}");
            std::fs::write(dir.join(MODEL_FILE), model.replace(from, to)).expect("write");
            let error = Policy::load(&dir)
                .await
                .expect_err("must not load")
                .to_string();
            std::fs::remove_dir_all(dir).ok();
            assert!(error.contains(expected), "{expected}: {error}");
        }
    }

    #[tokio::test]
    async fn a_broken_reload_keeps_the_policy_in_force_and_says_why() {
        let holder = PolicyHolder::load(&repo_policies()).await.expect("loads");
        let in_force = holder.current().version().to_owned();

        let broken = policy_dir("p, matrix.gp.iom@x, x, gp, iom, everything\n");
        let error = holder.reload(&broken).await.expect_err("rejected");
        assert!(
            error.to_string().contains("unknown level `everything`"),
            "{error}"
        );
        assert_eq!(holder.current().version(), in_force);

        let missing = broken.join("nowhere");
        let error = holder.reload(&missing).await.expect_err("rejected");
        assert!(error.to_string().contains("sharing.conf"), "{error}");
        assert_eq!(holder.current().version(), in_force);

        let fixed = policy_dir("p, matrix.gp.iom@x, x, gp, iom, detail\n");
        let held_by_a_request = holder.current();
        let version = holder.reload(&fixed).await.expect("reloads");
        assert_ne!(version, in_force);
        assert_eq!(holder.current().version(), version);
        assert_eq!(
            holder.current().level("x", Role::Gp, Category::Iom).level,
            Level::Detail
        );
        // A request that took the policy before the reload keeps deciding by it.
        assert_eq!(held_by_a_request.version(), in_force);
        for dir in [broken, fixed] {
            std::fs::remove_dir_all(dir).ok();
        }
    }
}
