//! The crate's one error type.

/// What failed in the outbox, the relay or the inbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A statement failed (the database is down, a table is missing, a constraint broke...).
    #[error("PostgreSQL: {what} failed: {source}")]
    Database {
        /// What was being done.
        what: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The event could not be encoded (its options break a publish rule, or it does not
    /// serialize): nothing was staged.
    #[error("cannot stage the event: {0}")]
    Encode(#[source] opsc_events_runtime::Error),
    /// Publishing staged rows to Redis failed; they stay staged and are tried again.
    #[error("publishing {rows} outbox row(s) of stream `{stream}` failed: {source}")]
    Publish {
        /// The stream.
        stream: String,
        /// How many rows the batch held.
        rows: usize,
        /// The runtime's error.
        #[source]
        source: opsc_events_runtime::Error,
    },
    /// An outbox row holds bytes that are not an encoded entry (written by something else).
    #[error("outbox row {id} is unreadable: {reason}")]
    BadRow {
        /// The row's `id`.
        id: i64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The event has the nil UUID as its id (written by another program): the inbox cannot
    /// tell its deliveries apart from those of other such events, so it refuses it rather than
    /// skip events it never applied.
    #[error("the inbox of group `{group}` cannot deduplicate an event whose id is the nil UUID")]
    NilEventId {
        /// The consumer group.
        group: String,
    },
    /// The database holds a migration of this crate newer than this build knows.
    #[error(
        "the database has opsc-events-postgres migration {found}, newer than this build's {known}; upgrade the crate"
    )]
    NewerSchema {
        /// The newest migration applied to the database.
        found: i32,
        /// The newest migration this build ships.
        known: i32,
    },
}

impl Error {
    pub(crate) fn db(what: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
        move |source| Error::Database { what, source }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
