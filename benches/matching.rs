//! Identity matching, end to end on a synthetic population with known truth: each person's
//! one to three agency records, corrupted as real records are, published one by one through
//! the engine exactly as the gateway will (identifier keys first, as the store does; then
//! blocking keys → candidates from an index of the records seen so far, grouped by resolved
//! person → term frequencies from the counts so far → `resolve` → Link joins the cluster,
//! Review counts a task and keeps the record apart, New starts a person). Then the same
//! records go to Splink (DuckDB) for pairwise precision, recall and F1 side by side.
//!
//! ```sh
//! cargo bench --bench matching                        # 100,000 and 1,000,000 persons
//! MATCHING_PERSONS=20000 cargo bench --bench matching  # one smaller run
//! MATCHING_SPLINK_PERSONS=0 cargo bench --bench matching  # without Splink
//! MATCHING_LOOKALIKE_STRESS=1 cargo bench --bench matching  # look-alikes at chance rate
//! MATCHING_ESTIMATE=30000 cargo bench --bench matching  # also write EM re-estimated rules
//! ```
//!
//! Everything is generated from `MATCHING_SEED` (default 20261201): names from the lists
//! below (a Zipf-like share so some are common, plus a long tail of made-up names), UK-shaped
//! postcodes, households, twins, and look-alikes (same common name and date of birth in
//! another postcode).

mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use rphonetic::DoubleMetaphone;
use safegate::domain::identity::{
    Candidate, Demographics, MatchRules, NameField, Resolution, TermFrequencies,
};
use safegate::domain::records::facts::PersonDetails;
use safegate::domain::records::{Day, Identifier, Postcode, Sex};

const MALE: &str = "john david michael james robert william richard thomas christopher paul mark \
andrew peter stephen anthony kenneth george edward daniel matthew joseph charles ian gary \
alan brian simon colin martin kevin jonathan steven philip nicholas samuel benjamin oliver \
harry jack jacob noah leo oscar alfie arthur henry freddie theo archie joshua alexander \
ethan lucas liam mason logan isaac dylan tyler adam luke ryan callum connor declan owen \
rhys aaron jamie kieran lewis nathan patrick sean shane wayne dean craig lee darren neil \
graham keith trevor derek frederick harold raymond ronald donald terence gregory lawrence \
timothy zachary theodore nathaniel francis frank ahmed mohammed omar yusuf ali hassan \
ibrahim tariq imran bilal arjun rohan vikram sanjay raj kwame kofi emeka chidi tomasz \
piotr jakub marek andrei mihai jose luis carlos diego mateo rafael jesús jérôme renée";

const FEMALE: &str = "mary elizabeth sarah margaret susan patricia jennifer linda barbara karen \
helen sandra ann anne donna carol ruth sharon michelle laura emily emma olivia amelia isla \
ava mia ivy freya lily grace sophia sophie isabella ella poppy evie charlotte jessica \
hannah lucy chloé zoë megan rebecca victoria katherine catherine rachel nicola lisa claire \
joanne julie tracey kelly stacey gemma natalie amy abigail samantha alexandra christine \
deborah jacqueline frances eleanor dorothy florence louise kimberley beth molly niamh \
siobhan aoife ciara orla fatima aisha maryam zainab amina priya anjali sunita deepa \
kavita ngozi chioma adaeze amara agnieszka katarzyna magdalena ioana elena maria lucia \
sofia valentina camila daniela paula marta carmen pilar inés noémie";

const FAMILY: &str = "smith jones williams taylor brown davies evans wilson thomas johnson \
roberts robinson thompson wright walker white edwards hughes green hall lewis harris clarke \
patel jackson wood turner martin cooper hill ward morris moore clark lee king baker harrison \
morgan allen james scott phillips watson davis parker price bennett young griffiths mitchell \
kelly cook carter richardson bailey collins bell shaw murphy miller cox richards khan \
marshall anderson simpson ellis adams singh begum wilkinson foster chapman powell webb rogers \
gray mason ali hunt hussain campbell matthews owen palmer holmes mills barnes knight lloyd \
butler russell barker fisher stevens jenkins murray dixon harvey graham pearson ahmed \
fletcher walsh kaur gibson howard andrews stewart elliott reynolds saunders payne fox ford \
pearce day brooks west lawrence cole atkinson bradley spencer gill dawson ball burton \
obrien watts rose booth perry ryan grant wells armstrong francis rees hayes hart hudson \
newman barrett webster hunter gregory carr lowe page marsh riley dunn woods parsons berry \
stone reid holland hawkins harding porter robertson newton oliver reed kennedy williamson \
bird gardner shah dean lane cooke bates henderson parry burgess bishop walton burns nicholson \
shepherd ross cross long freeman warren nicholls hamilton byrne sutton mcdonald yates hodgson \
robson curtis hopkins oneill o'brien o'connor mcCarthy nowak kowalski wiśniewski nguyen \
okafor adeyemi mensah boateng da-silva dos-santos müller schmidt rossi ferrari garcía \
fernández lópez martínez rodríguez gonzález pérez sánchez ramírez torres dubois moreau \
lefèvre jansen de-vries kovač horvat popescu ionescu ivanov petrov hashemi rahman chowdhury \
uddin miah islam sharma gupta kumar mistry joshi desai mehta chauhan rana wong chen li zhang \
wang liu huang yang zhao wu zhou lin tanaka suzuki kim park choi";

/// Made-up syllables for the long tail of rare names.
const SYLLABLES: &str = "ab ad al am an ar as ba be bo bra ca ce chi co da de di do dra ed el \
em en er es fa fe fi fo ga ge gi go ha he hi ho il in ir is ja jo ka ke ki ko la le li lo \
ma me mi mo na ne ni no ol om on or os pa pe pi po ra re ri ro sa se si so ta te ti to ul \
um un ur va ve vi vo wa we wi ya yo za ze zi zo";

const STREETS: &str = "High Church Mill Station Park Victoria Green Manor Kings Queens New \
Grange School North South West East Chapel London Alexandra Albert York Springfield Windsor \
Highfield Orchard Meadow Willow Oak Elm Beech Ash Cedar Holly Forest Valley Hill Bridge \
Castle Abbey Priory Rectory Vicarage Cross Market Bank Brook River Lake Field Common Heath \
Moor Wood Grove Rose Lavender Primrose Heather Clover";
const STREET_KINDS: [&str; 8] = [
    "Road", "Street", "Close", "Avenue", "Lane", "Drive", "Crescent", "Way",
];
const AREAS: [&str; 24] = [
    "SO", "PO", "M", "LS", "B", "BS", "CF", "EH", "G", "L", "NE", "NG", "OX", "RG", "S", "SE",
    "SW", "N", "E", "W", "BN", "CB", "LE", "NR",
];

/// Short forms the bench uses when an agency records a nickname; most are in the rules'
/// nickname list, a few (`alfie` for `alfred`, `sasha` ...) on purpose are not all.
const NICKNAMES: &[(&str, &[&str])] = &[
    ("robert", &["rob", "bob", "bobby", "robbie"]),
    ("elizabeth", &["liz", "beth", "lizzie", "betty"]),
    ("william", &["bill", "will", "billy", "liam"]),
    ("richard", &["rick", "dick", "rich"]),
    ("james", &["jim", "jimmy", "jamie"]),
    ("john", &["jack", "johnny"]),
    ("jonathan", &["jon", "jonny"]),
    ("margaret", &["maggie", "peggy", "meg"]),
    ("katherine", &["kate", "katie", "kathy"]),
    ("catherine", &["cath", "cathy", "kate"]),
    ("thomas", &["tom", "tommy"]),
    ("michael", &["mike", "mick"]),
    ("christopher", &["chris"]),
    ("christine", &["chris", "tina"]),
    ("anthony", &["tony"]),
    ("edward", &["ed", "eddie", "ted"]),
    ("alexander", &["alex", "sandy"]),
    ("alexandra", &["alex", "sasha"]),
    ("daniel", &["dan", "danny"]),
    ("joseph", &["joe", "joey"]),
    ("joshua", &["josh"]),
    ("matthew", &["matt"]),
    ("nicholas", &["nick", "nicky"]),
    ("samuel", &["sam", "sammy"]),
    ("samantha", &["sam"]),
    ("benjamin", &["ben"]),
    ("charles", &["charlie", "chas"]),
    ("charlotte", &["charlie", "lottie"]),
    ("david", &["dave"]),
    ("stephen", &["steve"]),
    ("andrew", &["andy", "drew"]),
    ("peter", &["pete"]),
    ("patrick", &["pat", "paddy"]),
    ("patricia", &["pat", "trish"]),
    ("timothy", &["tim"]),
    ("jennifer", &["jen", "jenny"]),
    ("rebecca", &["becky"]),
    ("victoria", &["vicky"]),
    ("susan", &["sue"]),
    ("deborah", &["debbie"]),
    ("jacqueline", &["jackie"]),
    ("frederick", &["fred", "freddie"]),
    ("henry", &["harry"]),
    ("frances", &["fran"]),
    ("francis", &["frank"]),
    ("abigail", &["abby"]),
    ("oliver", &["ollie"]),
    ("isabella", &["bella", "izzy"]),
    ("gregory", &["greg"]),
    ("kenneth", &["ken"]),
    ("ronald", &["ron"]),
    ("donald", &["don"]),
    ("raymond", &["ray"]),
    ("terence", &["terry"]),
    ("philip", &["phil"]),
    ("eleanor", &["ellie", "nell"]),
    ("dorothy", &["dot"]),
    ("mary", &["molly"]),
    ("sarah", &["sally"]),
    ("jessica", &["jess"]),
    ("natalie", &["nat"]),
    ("kimberley", &["kim"]),
    ("florence", &["flo"]),
    ("zachary", &["zach"]),
    ("theodore", &["theo"]),
    ("lawrence", &["larry"]),
    ("nathaniel", &["nate"]),
    ("sophia", &["sophie"]),
];

const AGENCIES: [(&str, &str); 5] = [
    ("health", "pas"),
    ("childrens_services", "lcs"),
    ("police", "niche"),
    ("education", "sims"),
    ("probation", "ndelius"),
];

/// How many times more look-alikes (same given name, family name and date of birth,
/// another household) than chance alone would give: `MATCHING_LOOKALIKE_STRESS`, 20 unless
/// set.
fn lookalike_stress() -> f64 {
    std::env::var("MATCHING_LOOKALIKE_STRESS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20.0)
}

/// Corruptions a copy carries, as bits, for the breakdown of misses.
const TAGS: [&str; 14] = [
    "given-name typo",
    "nickname",
    "given names reordered",
    "family-name typo",
    "family name hyphenated or a part dropped/reordered",
    "day and month swapped",
    "date of birth one digit off",
    "date of birth missing",
    "moved (new postcode and address)",
    "postcode missing",
    "address missing",
    "sex recorded wrongly",
    "twin",
    "look-alike exists",
];

/// SplitMix64: small, fast, deterministic.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn seeded(parts: &[u64]) -> Self {
        let mut rng = Rng(0x243F_6A88_85A3_08D3);
        for part in parts {
            rng.0 ^= part.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            rng.next();
        }
        rng
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// Names with Zipf-like shares: `listed` share of the mass over the list (rank r weighs
/// 1/r^s), the rest over made-up names.
struct NameTable {
    names: Vec<String>,
    cumulative: Vec<f64>,
}

impl NameTable {
    fn new(list: &str, s: f64, listed: f64, tail: usize, syllables: usize, seed: u64) -> Self {
        let mut names: Vec<String> = Vec::new();
        for name in list.split_whitespace() {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
        let h: f64 = (1..=names.len()).map(|r| 1.0 / (r as f64).powf(s)).sum();
        let mut weights: Vec<f64> = (1..=names.len())
            .map(|r| listed / (r as f64).powf(s) / h)
            .collect();
        let parts: Vec<&str> = SYLLABLES.split_whitespace().collect();
        let mut rng = Rng::seeded(&[seed]);
        let mut seen: std::collections::HashSet<String> = names.iter().cloned().collect();
        let mut made = 0;
        while made < tail {
            let mut name = String::new();
            for _ in 0..syllables + rng.below(2) {
                name.push_str(parts[rng.below(parts.len())]);
            }
            if seen.insert(name.clone()) {
                names.push(name);
                weights.push((1.0 - listed) / tail as f64);
                made += 1;
            }
        }
        let mut total = 0.0;
        let cumulative = weights
            .iter()
            .map(|w| {
                total += w;
                total
            })
            .collect();
        NameTable { names, cumulative }
    }

    /// The share of persons (of this table's sex) given the name.
    fn share(&self, index: u32) -> f64 {
        let i = index as usize;
        let total = *self.cumulative.last().unwrap_or(&1.0);
        let below = if i == 0 { 0.0 } else { self.cumulative[i - 1] };
        (self.cumulative[i] - below) / total
    }

    fn pick(&self, rng: &mut Rng) -> u32 {
        let total = *self.cumulative.last().unwrap_or(&1.0);
        let x = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
        self.cumulative
            .partition_point(|c| *c < x)
            .min(self.names.len() - 1) as u32
    }
}

struct Person {
    sex: Sex,
    given: u32,
    middle: Option<u32>,
    family: u32,
    /// The second part of a double-barrelled family name.
    family_second: Option<u32>,
    dob: Day,
    household: u32,
    nhs: String,
    pnc: Option<u32>,
    copies: u8,
    twin_of: Option<u32>,
    lookalike_of: Option<u32>,
}

struct Household {
    postcode: u32,
    number: u16,
}

struct Population {
    given_male: NameTable,
    given_female: NameTable,
    family: NameTable,
    postcodes: Vec<String>,
    streets: Vec<String>,
    households: Vec<Household>,
    persons: Vec<Person>,
    seed: u64,
}

fn random_dob(rng: &mut Rng, from: i32, to: i32) -> Day {
    loop {
        let year = from + rng.below((to - from + 1) as usize) as i32;
        let month = 1 + rng.below(12) as u8;
        let day = 1 + rng.below(31) as u8;
        if let Some(d) = Day::from_ymd(year, month, day) {
            return d;
        }
    }
}

impl Population {
    fn generate(size: usize, seed: u64) -> Self {
        let mut rng = Rng::seeded(&[seed, 1]);
        // The top given name is about 8% of its sex, the top family name about 2% of
        // persons (Smith is 1.3% in England and Wales): some names are common.
        let given_male = NameTable::new(MALE, 0.8, 0.8, 400, 2, seed ^ 11);
        let given_female = NameTable::new(FEMALE, 0.8, 0.8, 400, 2, seed ^ 12);
        let family = NameTable::new(FAMILY, 0.8, 0.25, 30_000, 2, seed ^ 13);
        let streets: Vec<String> = STREETS
            .split_whitespace()
            .flat_map(|s| STREET_KINDS.iter().map(move |k| format!("{s} {k}")))
            .collect();
        // About 12 households a postcode, as in the UK.
        let wanted = (size / 30).max(200);
        let mut postcodes: Vec<String> = Vec::with_capacity(wanted);
        let mut seen = std::collections::HashSet::new();
        let letters = b"ABDEFGHJLNPQRSTUWXYZ";
        while postcodes.len() < wanted {
            let area = AREAS[rng.below(AREAS.len())];
            let district = 1 + rng.below(30);
            let sector = rng.below(10);
            let unit = format!(
                "{}{}",
                letters[rng.below(letters.len())] as char,
                letters[rng.below(letters.len())] as char
            );
            let code = format!("{area}{district} {sector}{unit}");
            if seen.insert(code.clone()) {
                postcodes.push(code);
            }
        }
        let mut households: Vec<Household> = Vec::new();
        let mut persons: Vec<Person> = Vec::with_capacity(size);
        let stress = lookalike_stress();
        let mut nhs = common::NhsNumbers::from(seed % 7 + 1);
        let mut pnc_serial = 0u32;
        let mut new_person = |rng: &mut Rng,
                              sex: Sex,
                              family: u32,
                              family_second: Option<u32>,
                              dob: Day,
                              household: u32| {
            let table = if sex == Sex::Male {
                &given_male
            } else {
                &given_female
            };
            let adult = dob.year() < 2006;
            let pnc = (adult && rng.chance(0.2)).then(|| {
                pnc_serial += 1;
                pnc_serial
            });
            Person {
                sex,
                given: table.pick(rng),
                middle: rng.chance(0.4).then(|| table.pick(rng)),
                family,
                family_second,
                dob,
                household,
                nhs: nhs.next_valid(),
                pnc,
                copies: [1u8, 2, 2, 3, 3, 2, 1, 2][rng.below(8)],
                twin_of: None,
                lookalike_of: None,
            }
        };
        while persons.len() < size {
            let household = households.len() as u32;
            households.push(Household {
                postcode: rng.below(postcodes.len()) as u32,
                number: 1 + rng.below(250) as u16,
            });
            let family_name = family.pick(&mut rng);
            let second = rng.chance(0.04).then(|| family.pick(&mut rng));
            let size_here = 1 + rng.below(4);
            for member in 0..size_here {
                if persons.len() >= size {
                    break;
                }
                let sex = if rng.chance(0.5) {
                    Sex::Male
                } else {
                    Sex::Female
                };
                let dob = if member < 2 {
                    random_dob(&mut rng, 1940, 2004)
                } else {
                    random_dob(&mut rng, 2006, 2024)
                };
                let p = new_person(&mut rng, sex, family_name, second, dob, household);
                persons.push(p);
                // Twins: same family name, date of birth and address, another given name.
                if member >= 2 && rng.chance(0.03) && persons.len() < size {
                    let first = persons.len() as u32 - 1;
                    let sex = if rng.chance(0.5) {
                        Sex::Male
                    } else {
                        Sex::Female
                    };
                    let mut twin = new_person(&mut rng, sex, family_name, second, dob, household);
                    while twin.given == persons[first as usize].given
                        && sex == persons[first as usize].sex
                    {
                        twin.given = if sex == Sex::Male {
                            given_male.pick(&mut rng)
                        } else {
                            given_female.pick(&mut rng)
                        };
                    }
                    twin.twin_of = Some(first);
                    persons.push(twin);
                }
            }
            // Look-alikes: someone with the same name and date of birth elsewhere, at
            // lookalike_stress() times the rate chance gives a population of this size
            // (size × share of the given name × share of the family name / 31,000 dates).
            let of = persons.len() - 1;
            let table = if persons[of].sex == Sex::Male {
                &given_male
            } else {
                &given_female
            };
            let chance = stress
                * size as f64
                * table.share(persons[of].given)
                * 0.5
                * family.share(persons[of].family)
                / 31_000.0;
            if rng.chance(chance) && persons.len() < size {
                let other = households.len() as u32;
                households.push(Household {
                    postcode: rng.below(postcodes.len()) as u32,
                    number: 1 + rng.below(250) as u16,
                });
                let (sex, family_name, dob) =
                    (persons[of].sex, persons[of].family, persons[of].dob);
                let mut twin = new_person(&mut rng, sex, family_name, None, dob, other);
                twin.given = persons[of].given;
                twin.middle = None;
                twin.lookalike_of = Some(of as u32);
                persons.push(twin);
            }
        }
        Population {
            given_male,
            given_female,
            family,
            postcodes,
            streets,
            households,
            persons,
            seed,
        }
    }

    fn given_name(&self, p: &Person, index: u32) -> &str {
        let table = if p.sex == Sex::Male {
            &self.given_male
        } else {
            &self.given_female
        };
        &table.names[index as usize]
    }

    fn address_of(&self, household: &Household) -> (String, String) {
        let street = &self.streets[household.postcode as usize % self.streets.len()];
        (
            self.postcodes[household.postcode as usize].clone(),
            format!("{} {street}", household.number),
        )
    }

    /// One agency's copy of a person: its details, identifiers and corruption tags.
    fn copy(&self, person: u32, copy: u8) -> (PersonDetails, Vec<Identifier>, u32) {
        let p = &self.persons[person as usize];
        let mut agencies_rng = Rng::seeded(&[self.seed, u64::from(person), 7]);
        let mut order: Vec<usize> = (0..AGENCIES.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, agencies_rng.below(i + 1));
        }
        let (agency, namespace) = AGENCIES[order[copy as usize]];
        let mut rng = Rng::seeded(&[self.seed, u64::from(person), u64::from(copy), 9]);
        let mut tags = 0u32;
        let mut tag = |t: usize| tags |= 1 << t;
        if p.twin_of.is_some() {
            tag(12);
        }
        if p.lookalike_of.is_some() {
            tag(13);
        }

        let mut given = self.given_name(p, p.given).to_owned();
        let mut middle: Vec<String> = p
            .middle
            .map(|m| self.given_name(p, m).to_owned())
            .into_iter()
            .collect();
        let nicknames = NICKNAMES.iter().find(|(full, _)| *full == given);
        if let (Some((_, shorts)), true) = (nicknames, rng.chance(0.10)) {
            given = shorts[rng.below(shorts.len())].to_owned();
            tag(1);
        } else if rng.chance(0.06) {
            given = typo(&given, &mut rng);
            tag(0);
        } else if !middle.is_empty() && rng.chance(0.04) {
            std::mem::swap(&mut given, &mut middle[0]);
            tag(2);
        }
        let first = self.family.names[p.family as usize].clone();
        let mut family = match p.family_second {
            Some(second) => format!("{first}-{}", self.family.names[second as usize]),
            None => first.clone(),
        };
        if rng.chance(0.05) {
            family = typo(&family, &mut rng);
            tag(3);
        }
        if rng.chance(0.03) {
            tag(4);
            family = match p.family_second {
                Some(second) if rng.chance(0.5) => {
                    format!("{} {first}", self.family.names[second as usize])
                }
                Some(_) => first.clone(),
                None => format!(
                    "{family}-{}",
                    self.family.names[self.family.pick(&mut rng) as usize]
                ),
            };
        }
        let mut dob = Some(p.dob);
        if p.dob.day() <= 12 && p.dob.day() != p.dob.month() && rng.chance(0.03) {
            dob = Day::from_ymd(p.dob.year(), p.dob.day(), p.dob.month());
            tag(5);
        } else if rng.chance(0.02) {
            dob = Some(one_digit_off(p.dob, &mut rng));
            tag(6);
        } else if rng.chance(0.01) {
            dob = None;
            tag(7);
        }
        let mut household = &self.households[p.household as usize];
        if rng.chance(0.10) {
            loop {
                let other = &self.households[rng.below(self.households.len())];
                if other.postcode != household.postcode {
                    household = other;
                    break;
                }
            }
            tag(8);
        }
        let (postcode, mut address) = self.address_of(household);
        let postcode = if rng.chance(0.03) {
            tag(9);
            None
        } else {
            Postcode::parse(&postcode, "postcode").ok()
        };
        if rng.chance(0.05) {
            address.clear();
            tag(10);
        } else if rng.chance(0.2) {
            address = address
                .replace("Road", "Rd")
                .replace("Street", "St.")
                .to_uppercase();
        }
        let mut sex = Some(p.sex);
        if rng.chance(0.1) {
            sex = None;
        } else if rng.chance(0.003) {
            sex = Some(if p.sex == Sex::Male {
                Sex::Female
            } else {
                Sex::Male
            });
            tag(11);
        }
        if rng.chance(0.15) {
            given = given.to_uppercase();
            family = family.to_uppercase();
        }

        let mut identifiers = vec![Identifier::Local {
            agency: agency.to_owned(),
            namespace: namespace.to_owned(),
            value: format!("{person}-{copy}"),
        }];
        let child = p.dob.year() >= 2006;
        let nhs_rate = match agency {
            "health" => 0.95,
            "childrens_services" if child => 0.7,
            "childrens_services" => 0.2,
            "education" => 0.1,
            _ => 0.05,
        };
        if rng.chance(nhs_rate) {
            identifiers.push(Identifier::NhsNumber {
                value: p.nhs.clone(),
            });
        }
        if let Some(pnc) = p.pnc
            && matches!(agency, "police" | "probation")
            && rng.chance(0.9)
        {
            identifiers.push(Identifier::PncId {
                value: format!(
                    "{:02}/{:07}{}",
                    10 + pnc % 15,
                    pnc,
                    (b'A' + (pnc % 26) as u8) as char
                ),
            });
        }
        let details = PersonDetails {
            identifiers: identifiers.clone(),
            person: None,
            given_name: given,
            family_name: family,
            date_of_birth: dob,
            address,
            middle_names: middle,
            other_names: vec![],
            sex,
            postcode,
            address_lines: vec![],
        };
        (details, identifiers, tags)
    }
}

fn typo(name: &str, rng: &mut Rng) -> String {
    let mut chars: Vec<char> = name.chars().collect();
    if chars.len() < 3 {
        return name.to_owned();
    }
    let at = if rng.chance(0.1) {
        0
    } else {
        1 + rng.below(chars.len() - 1)
    };
    let letter = (b'a' + rng.below(26) as u8) as char;
    match rng.below(4) {
        0 => chars[at] = letter,
        1 => {
            chars.remove(at);
        }
        2 => chars.insert(at, letter),
        _ => {
            let at = at.min(chars.len() - 2);
            chars.swap(at, at + 1);
        }
    }
    chars.into_iter().collect()
}

fn one_digit_off(dob: Day, rng: &mut Rng) -> Day {
    loop {
        let text = dob.to_string().into_bytes();
        let positions = [2usize, 3, 5, 6, 8, 9];
        let at = positions[rng.below(positions.len())];
        let mut changed = text.clone();
        changed[at] = b'0' + rng.below(10) as u8;
        if changed == text {
            continue;
        }
        if let Some(day) = std::str::from_utf8(&changed).ok().and_then(Day::parse) {
            return day;
        }
    }
}

/// The records seen so far, grouped by resolved person, as the store would hold them.
struct Cluster {
    records: Vec<Demographics>,
    identifiers: Vec<Identifier>,
    /// The true person of each record.
    truth: Vec<u32>,
}

struct Store {
    clusters: Vec<Cluster>,
    blocks: HashMap<u64, Vec<u32>>,
    identifiers: HashMap<String, u32>,
    names: HashMap<(NameField, String), u32>,
    records: u32,
    hasher: std::collections::hash_map::RandomState,
}

impl TermFrequencies for Store {
    fn share(&self, field: NameField, value: &str) -> Option<f64> {
        let count = *self.names.get(&(field, value.to_owned()))?;
        Some(f64::from(count) / f64::from(self.records.max(1)))
    }
}

impl Store {
    fn new() -> Self {
        Store {
            clusters: Vec::new(),
            blocks: HashMap::new(),
            identifiers: HashMap::new(),
            names: HashMap::new(),
            records: 0,
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    fn key_hash(&self, key: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(key.as_bytes());
        h.finish()
    }

    fn add(
        &mut self,
        cluster: Option<u32>,
        record: Demographics,
        keys: &[String],
        identifiers: Vec<Identifier>,
        truth: u32,
    ) -> u32 {
        let id = cluster.unwrap_or_else(|| {
            self.clusters.push(Cluster {
                records: Vec::new(),
                identifiers: Vec::new(),
                truth: Vec::new(),
            });
            self.clusters.len() as u32 - 1
        });
        for key in keys {
            let hash = self.key_hash(key);
            let members = self.blocks.entry(hash).or_default();
            if !members.contains(&id) {
                members.push(id);
            }
        }
        for (field, value) in record.tf_terms() {
            *self.names.entry((field, value)).or_default() += 1;
        }
        self.records += 1;
        for identifier in identifiers {
            self.identifiers.entry(identifier.key()).or_insert(id);
            let c = &mut self.clusters[id as usize];
            if !c.identifiers.contains(&identifier) {
                c.identifiers.push(identifier);
            }
        }
        let c = &mut self.clusters[id as usize];
        c.records.push(record);
        c.truth.push(truth);
        id
    }
}

#[derive(Default)]
struct Tally {
    published: u64,
    by_identifier: u64,
    identifier_wrong: u64,
    engine: u64,
    should_link: u64,
    links: u64,
    correct_links: u64,
    reviews: u64,
    review_hits: u64,
    news: u64,
    blocking_misses: u64,
    missed_by_tag: [u64; TAGS.len()],
    blocking_missed_by_tag: [u64; TAGS.len()],
    missed_untagged: u64,
    missed_as_review: u64,
    missed_as_new: u64,
    missed_as_wrong_link: u64,
    wrong_links_by_relation: [u64; 4],
    review_reasons: HashMap<String, u64>,
    lookalikes: u64,
    twins: u64,
    nanos: Vec<u32>,
    /// Per record that reached the engine: the candidate records it was compared with.
    compared: Vec<u32>,
    /// Per published copy: (final cluster, cluster if reviews were accepted, truth).
    placed: Vec<(u32, u32, u32)>,
}

struct Run {
    persons: usize,
    copies: u64,
    tally: Tally,
    p50_us: f64,
    p99_us: f64,
    mean_us: f64,
    vm_hwm_mb: f64,
    compared_p50: u32,
    compared_p99: u32,
    pairwise: (f64, f64, f64),
    pairwise_reviewed: (f64, f64, f64),
    seconds: f64,
}

fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        parent[x as usize] = parent[parent[x as usize] as usize];
        x = parent[x as usize];
    }
    x
}

/// Pairwise precision, recall and F1: pairs of records in one predicted cluster against
/// pairs in one true person.
fn pairwise(assigned: impl Iterator<Item = (u32, u32)>) -> (f64, f64, f64) {
    let mut both: HashMap<(u32, u32), u64> = HashMap::new();
    let mut predicted: HashMap<u32, u64> = HashMap::new();
    let mut truth: HashMap<u32, u64> = HashMap::new();
    for (cluster, person) in assigned {
        *both.entry((cluster, person)).or_default() += 1;
        *predicted.entry(cluster).or_default() += 1;
        *truth.entry(person).or_default() += 1;
    }
    let pairs = |n: &u64| n * n.saturating_sub(1) / 2;
    let tp: u64 = both.values().map(pairs).sum();
    let pp: u64 = predicted.values().map(pairs).sum();
    let tt: u64 = truth.values().map(pairs).sum();
    let precision = if pp == 0 { 1.0 } else { tp as f64 / pp as f64 };
    let recall = if tt == 0 { 1.0 } else { tp as f64 / tt as f64 };
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    (precision, recall, f1)
}

fn relation(population: &Population, a: u32, b: u32) -> usize {
    let (pa, pb) = (
        &population.persons[a as usize],
        &population.persons[b as usize],
    );
    if pa.twin_of == Some(b) || pb.twin_of == Some(a) {
        0
    } else if pa.lookalike_of == Some(b) || pb.lookalike_of == Some(a) {
        1
    } else if pa.household == pb.household {
        2
    } else {
        3
    }
}

fn vm_hwm_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The publication order: every copy of every person, shuffled.
fn publication_order(population: &Population) -> Vec<(u32, u8)> {
    let mut order: Vec<(u32, u8)> = population
        .persons
        .iter()
        .enumerate()
        .flat_map(|(i, p)| (0..p.copies).map(move |c| (i as u32, c)))
        .collect();
    let mut rng = Rng::seeded(&[population.seed, 3]);
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    order
}

fn run(rules: &MatchRules, population: &Population) -> Run {
    let started = Instant::now();
    let order = publication_order(population);
    let mut store = Store::new();
    let mut tally = Tally {
        nanos: Vec::with_capacity(order.len()),
        placed: Vec::with_capacity(order.len()),
        ..Tally::default()
    };
    // The clusters each true person's records went to so far.
    let mut truth_clusters: Vec<Vec<u32>> = vec![Vec::new(); population.persons.len()];
    // Clusters merged as a reviewer accepting the top proposal would.
    let mut accepted: Vec<u32> = Vec::new();
    tally.twins = population
        .persons
        .iter()
        .filter(|p| p.twin_of.is_some())
        .count() as u64;
    tally.lookalikes = population
        .persons
        .iter()
        .filter(|p| p.lookalike_of.is_some())
        .count() as u64;
    for (person, copy) in order {
        let (details, identifiers, tags) = population.copy(person, copy);
        let should_link = !truth_clusters[person as usize].is_empty();

        let t0 = Instant::now();
        let record = Demographics::from_details(&details);
        let known = identifiers
            .iter()
            .find_map(|id| store.identifiers.get(&id.key()).copied());
        let keys = rules.blocking_keys(&record);
        let (placed, outcome, review_best, hit, blocked) = match known {
            Some(cluster) => (Some(cluster), 'i', None, false, true),
            None => {
                let mut ids: Vec<u32> = Vec::new();
                for key in &keys {
                    if let Some(members) = store.blocks.get(&store.key_hash(key)) {
                        ids.extend_from_slice(members);
                    }
                }
                ids.sort_unstable();
                ids.dedup();
                let candidates: Vec<Candidate> = ids
                    .iter()
                    .map(|id| {
                        let c = &store.clusters[*id as usize];
                        Candidate {
                            person_id: id.to_string(),
                            identifiers: c.identifiers.clone(),
                            records: c.records.clone(),
                        }
                    })
                    .collect();
                tally
                    .compared
                    .push(candidates.iter().map(|c| c.records.len() as u32).sum());
                let blocked = ids
                    .iter()
                    .any(|id| store.clusters[*id as usize].truth.contains(&person));
                match rules.resolve(&identifiers, &record, &candidates, &store) {
                    Resolution::Link { person_id, .. } => {
                        let cluster: u32 = person_id.parse().unwrap_or_default();
                        (Some(cluster), 'l', None, false, blocked)
                    }
                    Resolution::Review {
                        candidates,
                        reasons,
                    } => {
                        if should_link {
                            for reason in reasons {
                                *tally.review_reasons.entry(reason).or_default() += 1;
                            }
                        }
                        let hit = candidates.iter().any(|(id, _)| {
                            id.parse::<u32>()
                                .is_ok_and(|c| store.clusters[c as usize].truth.contains(&person))
                        });
                        let best = candidates
                            .first()
                            .and_then(|(id, _)| id.parse::<u32>().ok());
                        (None, 'r', best, hit, blocked)
                    }
                    Resolution::New { .. } => (None, 'n', None, false, blocked),
                }
            }
        };
        let truth_here = placed.map(|c| store.clusters[c as usize].truth.contains(&person));
        let cluster = store.add(placed, record, &keys, identifiers, person);
        tally
            .nanos
            .push(t0.elapsed().as_nanos().min(u128::from(u32::MAX)) as u32);

        if accepted.len() <= cluster as usize {
            accepted.push(cluster);
        }
        if let Some(best) = review_best {
            let (a, b) = (find(&mut accepted, cluster), find(&mut accepted, best));
            accepted[a as usize] = b;
        }
        tally.published += 1;
        let correct = truth_here.unwrap_or(false);
        if outcome == 'i' {
            tally.by_identifier += 1;
            if !correct {
                tally.identifier_wrong += 1;
            }
        } else {
            tally.engine += 1;
            tally.should_link += u64::from(should_link);
            match outcome {
                'l' => {
                    tally.links += 1;
                    if correct {
                        tally.correct_links += 1;
                    } else {
                        let other = store.clusters[cluster as usize].truth[0];
                        let rel = relation(population, person, other);
                        tally.wrong_links_by_relation[rel] += 1;
                    }
                }
                'r' => {
                    tally.reviews += 1;
                    if should_link && hit {
                        tally.review_hits += 1;
                    }
                }
                _ => tally.news += 1,
            }
            if should_link && !correct {
                match outcome {
                    'l' => tally.missed_as_wrong_link += 1,
                    'r' => tally.missed_as_review += 1,
                    _ => tally.missed_as_new += 1,
                }
                if !blocked {
                    tally.blocking_misses += 1;
                    for (t, slot) in tally.blocking_missed_by_tag.iter_mut().enumerate() {
                        if tags & (1 << t) != 0 {
                            *slot += 1;
                        }
                    }
                }
                if tags == 0 {
                    tally.missed_untagged += 1;
                }
                for (t, slot) in tally.missed_by_tag.iter_mut().enumerate() {
                    if tags & (1 << t) != 0 {
                        *slot += 1;
                    }
                }
            }
        }
        let clusters = &mut truth_clusters[person as usize];
        if !clusters.contains(&cluster) {
            clusters.push(cluster);
        }
        tally.placed.push((cluster, 0, person));
    }
    for i in 0..tally.placed.len() {
        let cluster = tally.placed[i].0;
        tally.placed[i].1 = find(&mut accepted, cluster);
    }
    let mut nanos = tally.nanos.clone();
    nanos.sort_unstable();
    let at = |q: f64| f64::from(nanos[((nanos.len() - 1) as f64 * q) as usize]) / 1000.0;
    let mean = nanos.iter().map(|n| f64::from(*n)).sum::<f64>() / nanos.len() as f64 / 1000.0;
    let mut compared = tally.compared.clone();
    compared.sort_unstable();
    let compared_at = |q: f64| {
        compared
            .get(((compared.len().max(1) - 1) as f64 * q) as usize)
            .copied()
            .unwrap_or(0)
    };
    Run {
        compared_p50: compared_at(0.5),
        compared_p99: compared_at(0.99),
        persons: population.persons.len(),
        copies: tally.published,
        p50_us: at(0.5),
        p99_us: at(0.99),
        mean_us: mean,
        vm_hwm_mb: vm_hwm_mb(),
        pairwise: pairwise(tally.placed.iter().map(|(c, _, t)| (*c, *t))),
        pairwise_reviewed: pairwise(tally.placed.iter().map(|(_, a, t)| (*a, *t))),
        seconds: started.elapsed().as_secs_f64(),
        tally,
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn report(run: &Run, out: &mut String) {
    let t = &run.tally;
    let precision = ratio(t.correct_links, t.links);
    let recall = ratio(t.correct_links, t.should_link);
    let with_review = ratio(t.correct_links + t.review_hits, t.should_link);
    let reviews_per_1000 = t.reviews as f64 * 1000.0 / run.persons as f64;
    let _ = writeln!(
        out,
        "\n== {} persons, {} agency records published ({:.0} s) ==",
        common::thousands(run.persons as f64),
        common::thousands(run.copies as f64),
        run.seconds
    );
    let _ = writeln!(
        out,
        "resolved by an identifier already on record (as the store does first): {} ({} wrong); by the engine: {}, of which {} had the person already on record",
        common::thousands(t.by_identifier as f64),
        t.identifier_wrong,
        common::thousands(t.engine as f64),
        common::thousands(t.should_link as f64),
    );
    let _ = writeln!(
        out,
        "engine decisions: {} link, {} review, {} new",
        common::thousands(t.links as f64),
        common::thousands(t.reviews as f64),
        common::thousands(t.news as f64)
    );
    let _ = writeln!(
        out,
        "{:<44} {:>10}   {:<22}",
        "figure (engine decisions)", "value", "goal"
    );
    let _ = writeln!(
        out,
        "{:<44} {:>10.5}   {:<22} {}",
        "auto-link precision",
        precision,
        ">= 0.9995",
        met(precision >= 0.9995)
    );
    let _ = writeln!(
        out,
        "{:<44} {:>10.5}   {:<22} {}",
        "auto-link recall",
        recall,
        ">= 0.98",
        met(recall >= 0.98)
    );
    let _ = writeln!(
        out,
        "{:<44} {:>10.5}   {:<22} {}",
        "recall of auto-link + review",
        with_review,
        ">= 0.995",
        met(with_review >= 0.995)
    );
    let _ = writeln!(
        out,
        "{:<44} {:>10.1}   {:<22}",
        "review tasks per 1,000 persons", reviews_per_1000, "(as few as possible)"
    );
    let _ = writeln!(
        out,
        "{:<44} {:>10.1}   {:<22}",
        "time per published record p50 (µs)", run.p50_us, ""
    );
    let _ = writeln!(
        out,
        "{:<44} {:>10.1}   {:<22} {}",
        "time per published record p99 (µs)",
        run.p99_us,
        "<= 1000 at 1M",
        if run.persons >= 1_000_000 {
            met(run.p99_us <= 1000.0)
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "{:<44} {:>10.1}",
        "time per published record mean (µs)", run.mean_us
    );
    let _ = writeln!(
        out,
        "{:<44} {:>10.0}",
        "peak memory so far, VmHWM (MB)", run.vm_hwm_mb
    );
    let _ = writeln!(
        out,
        "{:<44} {:>10}",
        "candidate records compared, p50 / p99",
        format!("{} / {}", run.compared_p50, run.compared_p99)
    );
    let (p, r, f) = run.pairwise;
    let _ = writeln!(
        out,
        "pairwise over all records (auto-links and identifiers): precision {p:.5} recall {r:.5} F1 {f:.5}"
    );
    let (p, r, f) = run.pairwise_reviewed;
    let _ = writeln!(
        out,
        "pairwise if every review accepted its top proposal:     precision {p:.5} recall {r:.5} F1 {f:.5}"
    );
    let missed = t.should_link - t.correct_links;
    let _ = writeln!(
        out,
        "why {} records with their person on record were not auto-linked: {} went to review, {} became new, {} linked to someone else; {} never met their person in a block",
        missed, t.missed_as_review, t.missed_as_new, t.missed_as_wrong_link, t.blocking_misses
    );
    let mut tags: Vec<(usize, u64)> = t.missed_by_tag.iter().copied().enumerate().collect();
    tags.sort_by_key(|t| std::cmp::Reverse(t.1));
    for (i, count) in tags.into_iter().filter(|(_, c)| *c > 0) {
        let _ = writeln!(out, "    {:>7}  carried: {}", count, TAGS[i]);
    }
    let _ = writeln!(
        out,
        "    {:>7}  carried no corruption (the earlier record did)",
        t.missed_untagged
    );
    let mut tags: Vec<(usize, u64)> = t
        .blocking_missed_by_tag
        .iter()
        .copied()
        .enumerate()
        .collect();
    tags.sort_by_key(|t| std::cmp::Reverse(t.1));
    let listed: Vec<String> = tags
        .into_iter()
        .filter(|(_, c)| *c > 0)
        .map(|(i, c)| format!("{c} {}", TAGS[i]))
        .collect();
    let _ = writeln!(
        out,
        "never met in a block, by what they carried: {}",
        listed.join("; ")
    );
    let mut reasons: Vec<(&String, &u64)> = t.review_reasons.iter().collect();
    reasons.sort_by_key(|r| std::cmp::Reverse(*r.1));
    for (reason, count) in reasons {
        let _ = writeln!(
            out,
            "    {count:>7}  reviews of a record whose person was on record gave: {reason}"
        );
    }
    let w = t.wrong_links_by_relation;
    let _ = writeln!(
        out,
        "wrong auto-links by who was merged: twin {}, look-alike {}, same household {}, unrelated {} (the population has {} twins and {} look-alikes, {}x chance)",
        w[0],
        w[1],
        w[2],
        w[3],
        t.twins,
        t.lookalikes,
        lookalike_stress()
    );
}

/// Writes one row per agency record of the population to a CSV for Splink.
fn write_csv(population: &Population, path: &Path) -> Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        file,
        "unique_id,cluster,given_name,middle_names,family_name,dob,postcode,address,sex,given_dm,family_dm,dob_any_order,birth_year,given_initial,month_day,district,nhs_number,pnc_id"
    )?;
    let dm = DoubleMetaphone::default();
    for (i, p) in population.persons.iter().enumerate() {
        for c in 0..p.copies {
            let (details, identifiers, _) = population.copy(i as u32, c);
            let d = Demographics::from_details(&details);
            let scheme = |wanted: &str| {
                identifiers
                    .iter()
                    .find(|id| id.scheme_name() == wanted)
                    .map(|id| id.key())
                    .unwrap_or_default()
            };
            let (nhs, pnc) = (scheme("nhs_number"), scheme("pnc_id"));
            let month_day = d
                .date_of_birth
                .map(|d| format!("{:02}-{:02}", d.month(), d.day()))
                .unwrap_or_default();
            let district = d
                .postcode
                .as_ref()
                .map(|p| p.district().to_owned())
                .unwrap_or_default();
            let given = d.given_names.first().cloned().unwrap_or_default();
            let middle = d
                .given_names
                .get(1..)
                .map(|m| m.join(" "))
                .unwrap_or_default();
            let dob = d.date_of_birth.map(|d| d.to_string()).unwrap_or_default();
            let dob_any = d
                .date_of_birth
                .map(|d| {
                    let (lo, hi) = (d.day().min(d.month()), d.day().max(d.month()));
                    format!("{}-{lo:02}/{hi:02}", d.year())
                })
                .unwrap_or_default();
            let year = d
                .date_of_birth
                .map(|d| d.year().to_string())
                .unwrap_or_default();
            let sex = d.sex.map(|s| s.as_str()).unwrap_or_default();
            let given_dm = if given.is_empty() {
                String::new()
            } else {
                dm.double_metaphone(&given).primary()
            };
            let family_dm = if d.family_name.is_empty() {
                String::new()
            } else {
                dm.double_metaphone(&d.family_name.replace(' ', ""))
                    .primary()
            };
            let initial = given.chars().next().map(String::from).unwrap_or_default();
            writeln!(
                file,
                "{i}-{c},{i},{given},{middle},{},{dob},{},{},{sex},{given_dm},{family_dm},{dob_any},{year},{initial},{month_day},{district},{nhs},{pnc}",
                d.family_name,
                d.postcode.as_ref().map(|p| p.as_str()).unwrap_or_default(),
                d.address,
            )?;
        }
    }
    file.flush()?;
    Ok(())
}

/// Runs Splink on the CSV; its printed lines, or why it could not run.
fn splink(root: &Path, csv: &Path, rules: &MatchRules) -> Result<String, String> {
    let venv = root.join("target/splink-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        let made = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .map_err(|e| format!("cannot run python3 -m venv: {e}"))?;
        if !made.success() {
            return Err("python3 -m venv failed".into());
        }
    }
    let installed = Command::new(&python)
        .args([
            "-c",
            "import splink, sys; sys.exit(0 if splink.__version__ == '5.0.0' else 1)",
        ])
        // Only whether it is there: a fresh venv's ImportError is not news.
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        let out = Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "splink==5.0.0"])
            .output()
            .map_err(|e| format!("cannot run pip: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "pip install splink==5.0.0 failed: {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            ));
        }
    }
    let out = Command::new(&python)
        .arg(root.join("benches/matching_splink.py"))
        .arg(csv)
        .arg(rules.auto_link_probability().to_string())
        .arg(rules.review_probability().to_string())
        .output()
        .map_err(|e| format!("cannot run the Splink script: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "the Splink script failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .join(" | ")
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn main() -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let rules = MatchRules::load(&root.join("policies/matching.toml"))
        .context("loading policies/matching.toml")?;
    let seed: u64 = std::env::var("MATCHING_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_201);
    let sizes: Vec<usize> = std::env::var("MATCHING_PERSONS")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().replace('_', "").parse().ok())
        .filter(|n: &usize| *n > 0)
        .collect();
    let splink_persons: usize = std::env::var("MATCHING_SPLINK_PERSONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "identity matching bench: rules {} (policies/matching.toml), seed {seed}, load average {}",
        &rules.version()[..12],
        common::load_average()
    );
    let _ = writeln!(out, "command: {}", common::command("matching"));
    print!("{out}");
    if let Ok(n) = std::env::var("MATCHING_ESTIMATE") {
        // Re-estimate the model from the records of `n` persons, for reviewing the file.
        let population = Population::generate(n.parse().unwrap_or(20_000), seed);
        let records: Vec<Demographics> = publication_order(&population)
            .into_iter()
            .map(|(p, c)| Demographics::from_details(&population.copy(p, c).0))
            .collect();
        let estimated = rules.estimate(&records, 10).context("estimating")?;
        let path = root.join("target/matching-estimated.toml");
        std::fs::write(&path, estimated.to_toml())?;
        println!("estimated rules written to {}", path.display());
    }
    let mut runs: Vec<Run> = Vec::new();
    for size in &sizes {
        let population = Population::generate(*size, seed);
        let result = run(&rules, &population);
        let mut text = String::new();
        report(&result, &mut text);
        print!("{text}");
        out.push_str(&text);
        runs.push(result);
    }
    if let (Some(small), Some(large)) = (
        runs.iter().find(|r| r.persons == 100_000),
        runs.iter().find(|r| r.persons == 1_000_000),
    ) {
        let ratio = large.p99_us / small.p99_us;
        let line = format!(
            "\np99 at 1,000,000 / p99 at 100,000 = {:.1} / {:.1} µs = {ratio:.2}   goal <= 1.5: {}\n",
            large.p99_us,
            small.p99_us,
            met(ratio <= 1.5)
        );
        print!("{line}");
    }

    if splink_persons > 0 {
        println!(
            "\n== side by side with Splink 5.0.0 (DuckDB) on the same population of {} persons (MATCHING_SPLINK_PERSONS) ==",
            common::thousands(splink_persons as f64)
        );
        let population = Population::generate(splink_persons, seed);
        let ours = run(&rules, &population);
        let csv = root.join("target/matching-splink.csv");
        write_csv(&population, &csv).context("writing the Splink CSV")?;
        let started = Instant::now();
        let splink = splink(&root, &csv, &rules);
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "same records ({} rows, one per agency record, with the true person): {}",
            common::thousands(ours.copies as f64),
            csv.display()
        );
        println!(
            "{:<58} {:>10} {:>10} {:>10}",
            "pairwise (pairs of records in one cluster vs one person)", "precision", "recall", "F1"
        );
        let (p, r, f) = ours.pairwise;
        println!(
            "{:<58} {p:>10.5} {r:>10.5} {f:>10.5}",
            format!("safegate, auto-link (>= {})", rules.auto_link_probability())
        );
        let (p, r, f) = ours.pairwise_reviewed;
        println!(
            "{:<58} {p:>10.5} {r:>10.5} {f:>10.5}",
            "safegate, every review accepting its top proposal"
        );
        match splink {
            Ok(lines) => {
                for line in lines.lines() {
                    if let Some(rest) = line.strip_prefix("PAIRWISE ") {
                        let f: Vec<&str> = rest.split('\t').collect();
                        if f.len() == 4 {
                            println!(
                                "{:<58} {:>10} {:>10} {:>10}",
                                format!("Splink, clustered at >= {}", f[0]),
                                f[1],
                                f[2],
                                f[3]
                            );
                        }
                    } else if let Some(rest) = line.strip_prefix("RESULT ") {
                        println!("splink: {rest}");
                    }
                }
                println!("(Splink took {seconds:.0} s including training)");
            }
            Err(why) => println!("Splink could not run: {why}"),
        }
    }
    Ok(())
}
