//! Past imports: the record of each committed import and its results file read back, a
//! piece at a time, so that the results of a million-line import are never held whole.

use uuid::Uuid;

use crate::store::{ImportRow, Store, StoreError};

/// Stored runs of results rows read per piece.
const RUNS_PER_CHUNK: i64 = 32;

/// A committed import's results file (`line,user_email,account_address,outcome,message`),
/// read back from the store in pieces.
pub struct StoredResults {
    store: Store,
    id: Uuid,
    after: u64,
    header_written: bool,
    done: bool,
}

/// Why a results file could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored run did not inflate.
    #[error("the stored results of import {id} are damaged: {source}")]
    Damaged {
        /// The import.
        id: Uuid,
        /// What inflating said.
        source: std::io::Error,
    },
}

impl StoredResults {
    /// The results of import `id` with its record, or `None` when there is no such import.
    pub async fn open(
        store: &Store,
        id: Uuid,
    ) -> Result<Option<(ImportRow, StoredResults)>, StoreError> {
        let Some(row) = store.import(id).await? else {
            return Ok(None);
        };
        let results = StoredResults {
            store: store.clone(),
            id,
            after: 0,
            header_written: false,
            done: false,
        };
        Ok(Some((row, results)))
    }

    /// The next piece of the file, header first; `None` once it is all read.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, HistoryError> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .store
            .import_results(self.id, self.after, RUNS_PER_CHUNK)
            .await?;
        self.done = page.len() < usize::try_from(RUNS_PER_CHUNK).unwrap_or(usize::MAX);
        if let Some((last, _)) = page.last() {
            self.after = u64::try_from(*last).unwrap_or(u64::MAX);
        }
        let mut chunk = Vec::new();
        let header = !std::mem::replace(&mut self.header_written, true);
        super::report::write_runs(
            &mut chunk,
            header,
            page.iter().map(|(_, run)| run.as_slice()),
        )
        .map_err(|source| HistoryError::Damaged {
            id: self.id,
            source,
        })?;
        Ok(Some(chunk))
    }
}
