//! Every RPC's request: the first byte picks the RPC, the second the calling agency
//! system, the rest is the message as it would arrive on the wire. Decoded with prost and
//! run through the handler's own checks and conversions (`safegate::api::requests`).
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use safegate::api::requests::{Rpc, check};
use safegate::domain::records::Day;
use safegate::domain::{Agency, AgencySystem, Role};
use safegate::registry::Caller;

/// Callers of every kind the registry holds: agencies that publish and ask, the IG
/// office (the admin system), the identity steward and a school.
fn callers() -> &'static [Caller] {
    static CALLERS: OnceLock<Vec<Caller>> = OnceLock::new();
    CALLERS.get_or_init(|| {
        [
            (
                "police-iom",
                Agency::Police,
                vec![Role::IomOfficer, Role::PoliceOfficer],
                false,
            ),
            (
                "childrens-services",
                Agency::ChildrensServices,
                vec![Role::SocialWorker, Role::TeamManager],
                false,
            ),
            (
                "health-visiting",
                Agency::Health,
                vec![Role::HealthVisitor],
                false,
            ),
            (
                "ig-office",
                Agency::InformationGovernance,
                vec![Role::IgOfficer],
                true,
            ),
            (
                "mash",
                Agency::ChildrensServices,
                vec![Role::IdentitySteward],
                false,
            ),
            (
                "primary-school",
                Agency::Education,
                vec![Role::SchoolDsl],
                false,
            ),
        ]
        .into_iter()
        .map(|(id, agency, roles, admin)| Caller {
            system: Arc::new(AgencySystem {
                id: id.into(),
                name: id.into(),
                agency,
                roles,
                contact_route: "duty line".into(),
                admin,
            }),
            certificate_sha256: String::new(),
            certificate_identity: format!("uri:urn:safegate:system:{id}"),
            authority: "dev-ca".into(),
        })
        .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let [rpc, caller, message @ ..] = data else {
        return;
    };
    let rpc = Rpc::ALL[usize::from(*rpc) % Rpc::ALL.len()];
    let callers = callers();
    let caller = &callers[usize::from(*caller) % callers.len()];
    static TODAY: OnceLock<Day> = OnceLock::new();
    let today = *TODAY.get_or_init(|| Day::parse("2026-06-01").expect("a day"));
    let _ = check(rpc, caller, message, today);
});
