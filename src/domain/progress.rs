//! How far a long piece of work has got, told to whoever started it. The domain reports;
//! the caller decides whether and how to show it (the CLI draws on a terminal only).

/// Entries of the disclosure log done so far, of `total` when it is known up front.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: Option<u64>,
}

/// Told of each step of the work. Called often (up to once per entry), so it must be cheap:
/// a reporter that draws decides itself how often to.
pub type OnProgress<'a> = &'a mut (dyn FnMut(Progress) + Send);

/// A reporter for work that nobody watches.
pub fn unwatched(_: Progress) {}
