//! Digesting a store scan on a thread of its own: the scan copies each row into a batch and
//! goes on reading, while another thread hands the batches to the real sink (the index,
//! whose keyed hashes cost as much as reading the rows). A scan read in parts side by side
//! relays each part through a clone of its own.

use std::ops::Range;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use super::buffers::Buffers;
use crate::store::{ScanSink, ScannedAccount};

/// Rows a batch holds before it is handed over.
const BATCH_ROWS: usize = 1024;
/// Batches waiting to be digested before the scan waits for the digesting thread.
const QUEUED: usize = 2;

/// The reading side: a [`ScanSink`] that copies rows into batches and sends them.
pub struct Relay {
    batch: Batch,
    sender: SyncSender<Batch>,
}

/// The digesting side: batches to hand to the real sink, in the order they were read.
pub struct Batches(Receiver<Batch>);

/// Rows copied out of a scan: their bytes in one buffer, each field a range of it.
#[derive(Default)]
struct Batch {
    buffers: Buffers,
    users: Vec<(i64, Range<usize>)>,
    accounts: Vec<AccountRow>,
}

struct AccountRow {
    user_id: i64,
    id: i64,
    address: Range<usize>,
    address_norm: Range<usize>,
    display_name: Option<Range<usize>>,
    username: Range<usize>,
    domain: Option<Range<usize>>,
    outgoing_username: Option<Range<usize>>,
    password_mac: Option<Range<usize>>,
    outgoing_password_mac: Option<Range<usize>>,
}

/// A relay and the batches it will send.
pub fn channel() -> (Relay, Batches) {
    let (sender, receiver) = std::sync::mpsc::sync_channel(QUEUED);
    (
        Relay {
            batch: Batch::default(),
            sender,
        },
        Batches(receiver),
    )
}

impl Relay {
    fn send(&mut self) {
        let batch = std::mem::take(&mut self.batch);
        // The digesting side is gone only if it failed, which its result reports.
        if let Err(TrySendError::Full(batch)) = self.sender.try_send(batch) {
            let sender = &self.sender;
            may_block(|| {
                let _ = sender.send(batch);
            });
        }
    }

    fn full(&mut self) {
        if self.batch.users.len() + self.batch.accounts.len() >= BATCH_ROWS {
            self.send();
        }
    }
}

/// Another relay to the same digesting side, for a part of the scan read on another
/// thread: it sends batches of its own.
impl Clone for Relay {
    fn clone(&self) -> Relay {
        Relay {
            batch: Batch::default(),
            sender: self.sender.clone(),
        }
    }
}

/// Runs `wait`, which blocks until the digesting side takes a batch. The PostgreSQL scan
/// relays from an async task: on a thread of a multi-threaded runtime, the runtime is told
/// first, so that its other tasks (the server's other requests) move to other threads
/// rather than wait behind the scan.
fn may_block(wait: impl FnOnce()) {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(runtime) if runtime.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait);
        }
        _ => wait(),
    }
}

/// A relay sends the rows it holds when dropped; the digesting side ends once every relay
/// is dropped.
impl Drop for Relay {
    fn drop(&mut self) {
        if !self.batch.users.is_empty() || !self.batch.accounts.is_empty() {
            self.send();
        }
    }
}

impl Batch {
    /// Hands every row to `sink`, users first, as the scan read them.
    fn replay(&self, sink: &mut dyn ScanSink) {
        let bytes = |r: &Range<usize>| self.buffers.bytes_at(r);
        for (id, email) in &self.users {
            sink.user(*id, bytes(email));
        }
        for a in &self.accounts {
            sink.account(&ScannedAccount {
                user_id: a.user_id,
                address: bytes(&a.address),
                address_norm: bytes(&a.address_norm),
                display_name: a.display_name.as_ref().map(bytes),
                username: bytes(&a.username),
                domain: a.domain.as_ref().map(bytes),
                outgoing_username: a.outgoing_username.as_ref().map(bytes),
                password_mac: a.password_mac.as_ref().map(bytes),
                outgoing_password_mac: a.outgoing_password_mac.as_ref().map(bytes),
                id: a.id,
            });
        }
    }
}

impl ScanSink for Relay {
    fn user(&mut self, id: i64, email_norm: &[u8]) {
        let email = self.batch.buffers.bytes(email_norm);
        self.batch.users.push((id, email));
        self.full();
    }

    fn account(&mut self, a: &ScannedAccount<'_>) {
        let b = &mut self.batch.buffers;
        let row = AccountRow {
            user_id: a.user_id,
            id: a.id,
            address: b.bytes(a.address),
            address_norm: b.bytes(a.address_norm),
            display_name: a.display_name.map(|t| b.bytes(t)),
            username: b.bytes(a.username),
            domain: a.domain.map(|t| b.bytes(t)),
            outgoing_username: a.outgoing_username.map(|t| b.bytes(t)),
            password_mac: a.password_mac.map(|m| b.bytes(m)),
            outgoing_password_mac: a.outgoing_password_mac.map(|m| b.bytes(m)),
        };
        self.batch.accounts.push(row);
        self.full();
    }
}

impl Batches {
    /// Hands every batch to `sink` as it comes, until every relay is dropped.
    pub fn digest_into(self, sink: &mut dyn ScanSink) {
        for batch in self.0 {
            batch.replay(sink);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes down every row it is given.
    #[derive(Default)]
    struct Recorder(Vec<String>);

    impl ScanSink for Recorder {
        fn user(&mut self, id: i64, email_norm: &[u8]) {
            self.0.push(format!("user {id} {email_norm:?}"));
        }

        fn account(&mut self, a: &ScannedAccount<'_>) {
            self.0.push(format!("account {a:?}"));
        }
    }

    fn rows(sink: &mut dyn ScanSink, n: i64) {
        for id in 0..n {
            sink.user(id, format!("user{id}@example.com").as_bytes());
        }
        for id in 0..n {
            let address = format!("Mail{id}@example.com");
            let mac = [id as u8; 17];
            sink.account(&ScannedAccount {
                user_id: id,
                address: address.as_bytes(),
                address_norm: address.to_lowercase().as_bytes(),
                display_name: (id % 2 == 0).then_some("Zoë, Ødegård".as_bytes()),
                username: b"user",
                domain: (id % 3 == 0).then_some(b"CORP"),
                outgoing_username: None,
                password_mac: Some(&mac),
                outgoing_password_mac: (id % 5 == 0).then_some(&mac[..16]),
                id: 1000 + id,
            });
        }
    }

    #[test]
    fn the_digesting_side_gets_every_row_as_the_scan_read_it() {
        let mut direct = Recorder::default();
        rows(&mut direct, 10_000);
        let (mut relay, batches) = channel();
        let digesting = std::thread::spawn(move || {
            let mut relayed = Recorder::default();
            batches.digest_into(&mut relayed);
            relayed
        });
        rows(&mut relay, 10_000);
        drop(relay);
        let relayed = digesting.join().expect("digesting thread");
        assert_eq!(relayed.0.len(), 20_000);
        assert_eq!(relayed.0, direct.0);
    }

    #[test]
    fn a_relay_waiting_on_the_digesting_side_lets_its_runtimes_other_tasks_run() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let (relay, batches) = channel();
        let (signal, other_task_ran) = std::sync::mpsc::channel();
        // The digesting side takes nothing until another task of the runtime has run, or
        // until it gives up waiting for one.
        let digesting = std::thread::spawn(move || {
            let gave_up = other_task_ran
                .recv_timeout(std::time::Duration::from_secs(10))
                .is_err();
            let mut relayed = Recorder::default();
            batches.digest_into(&mut relayed);
            (gave_up, relayed.0.len())
        });
        let rows_sent = 2 * (QUEUED + 2) * BATCH_ROWS;
        runtime.block_on(async move {
            // The scan fills the queue and waits, on the runtime's only thread.
            let scan = tokio::spawn(async move {
                rows(&mut { relay }, (rows_sent / 2) as i64);
            });
            tokio::spawn(async move { signal.send(()) });
            scan.await.unwrap();
        });
        let (gave_up, relayed) = digesting.join().expect("digesting thread");
        assert!(!gave_up, "the waiting relay held its runtime's only thread");
        assert_eq!(relayed, rows_sent);
    }

    #[test]
    fn rows_relayed_by_clones_side_by_side_all_arrive() {
        let mut direct = Recorder::default();
        rows(&mut direct, 3_000);
        rows(&mut direct, 3_000);
        let (relay, batches) = channel();
        let digesting = std::thread::spawn(move || {
            let mut relayed = Recorder::default();
            batches.digest_into(&mut relayed);
            relayed
        });
        let parts: Vec<_> = (0..2)
            .map(|_| {
                let mut clone = relay.clone();
                std::thread::spawn(move || rows(&mut clone, 3_000))
            })
            .collect();
        drop(relay);
        for part in parts {
            part.join().expect("relaying thread");
        }
        let mut relayed = digesting.join().expect("digesting thread").0;
        relayed.sort();
        direct.0.sort();
        assert_eq!(relayed, direct.0);
    }
}
