//! The gateway's domain: who may ask, on whose behalf, and the facts agencies publish.
//! Knows nothing of tonic or SQL.

/// Declares a closed vocabulary whose wire names are the snake_case words of DOMAIN.md,
/// so the registry, policies, logs and error messages all use the same spelling.
macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value's name as written in configuration, policies and logs.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }

            /// Parses the configuration spelling; `None` for anything else.
            pub fn parse(word: &str) -> Option<Self> {
                match word { $($word => Some($name::$variant),)+ _ => None }
            }

            /// The accepted spellings, comma-separated, for error messages.
            pub fn expected() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let word = <String as serde::Deserialize>::deserialize(deserializer)?;
                Self::parse(&word).ok_or_else(|| {
                    serde::de::Error::custom(format!("`{word}` is not one of: {}", Self::expected()))
                })
            }
        }
    };
}

pub mod alerts;
pub mod contact;
pub mod identity;
pub mod ledger;
pub mod notify;
pub mod policy;
mod practitioner;
pub mod progress;
pub mod publish;
pub mod query;
pub mod records;
pub mod shown;
mod vocabulary;

pub use practitioner::{AgencySystem, Practitioner, RequestedContext};
pub use vocabulary::{Agency, Purpose, Role};

/// What a call to a room's storage trait answers, later: the boxed future that keeps the
/// trait usable as `dyn` (each room says in its own trait what it needs from storage,
/// and the store implements it).
pub type Stored<'a, T> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<T, crate::error::Error>> + Send + 'a>,
>;
