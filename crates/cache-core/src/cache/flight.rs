//! In-process single-flight: one lookup per key (and value / error type) leads, the others
//! follow it and get its outcome.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fred::bytes::Bytes;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::codec::{Codec, CodecError};
use crate::error::BuildError;

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The outcome of one build, shared with waiters: the encoded payload (None: not found) or the
/// builder's error.
pub(super) type Flight = Result<Option<(Codec, Bytes)>, Arc<dyn Any + Send + Sync>>;

/// One lookup in progress in this process, keyed by (full key, value and error types).
pub(super) struct FlightEntry {
    pub(super) id: u64,
    /// The cache's write epoch when the lookup started.
    pub(super) epoch: u64,
    /// Where the outcome is published; created by the first follower (a lookup nobody joins,
    /// the common hit, allocates no channel).
    pub(super) slot: Option<Arc<watch::Sender<Option<Flight>>>>,
}

impl FlightEntry {
    pub(super) fn slot(&mut self) -> Arc<watch::Sender<Option<Flight>>> {
        self.slot
            .get_or_insert_with(|| Arc::new(watch::Sender::new(None)))
            .clone()
    }
}

#[derive(Default)]
pub(super) struct FlightMap {
    pub(super) next_id: u64,
    pub(super) map: HashMap<(String, TypeId), FlightEntry>,
}

pub(super) type Flights = Mutex<FlightMap>;

/// What [`Cache::join`] decided.
pub(super) enum Join<'a> {
    /// Another caller is looking the key up: wait for its outcome (the key and the flight's
    /// id are handed back).
    Follow(watch::Receiver<Option<Flight>>, String, u64),
    /// This caller looks the key up and shares the outcome.
    Lead(Leader<'a>),
}

/// The caller that leads a flight. Dropping it (cancellation) ends the flight without an
/// outcome: followers then start over.
pub(super) struct Leader<'a> {
    pub(super) flights: &'a Flights,
    pub(super) key: (String, TypeId),
    pub(super) id: u64,
    pub(super) done: bool,
}

impl Leader<'_> {
    pub(super) fn full(&self) -> &str {
        &self.key.0
    }

    /// Shares an outcome with the followers so far and later ones, without ending the flight
    /// (a stale value served while this leader refreshes it).
    pub(super) fn share(&mut self, outcome: Flight) {
        let slot = lock(self.flights)
            .map
            .get_mut(&self.key)
            .filter(|f| f.id == self.id)
            .map(FlightEntry::slot);
        if let Some(slot) = slot {
            slot.send_replace(Some(outcome));
        }
    }

    /// Ends the flight with an outcome; it is only built when someone is waiting for it.
    pub(super) fn finish(mut self, outcome: impl FnOnce() -> Flight) {
        if let Some(slot) = self.remove() {
            slot.send_replace(Some(outcome()));
        }
    }

    /// Takes the flight out of the map (once); its slot, if anyone joined.
    pub(super) fn remove(&mut self) -> Option<Arc<watch::Sender<Option<Flight>>>> {
        if std::mem::replace(&mut self.done, true) {
            return None;
        }
        let mut flights = lock(self.flights);
        if flights.map.get(&self.key).is_some_and(|f| f.id == self.id) {
            flights.map.remove(&self.key).and_then(|f| f.slot)
        } else {
            None
        }
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Waits for a flight's outcome; `None` when its leader was cancelled first.
pub(super) async fn follow(mut rx: watch::Receiver<Option<Flight>>) -> Option<Flight> {
    loop {
        if let Some(outcome) = rx.borrow_and_update().clone() {
            return Some(outcome);
        }
        if rx.changed().await.is_err() {
            return rx.borrow().clone();
        }
    }
}

/// What the followers of a build get when its builder panicked: the panic's message.
pub(super) struct Panicked(pub(super) String);

/// The text of a panic payload (`panic!` with a literal or a formatted message).
pub(super) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

pub(super) fn decode_flight<T: DeserializeOwned, E: Send + Sync + 'static>(
    result: Flight,
) -> Result<Option<T>, BuildError<E>> {
    match result {
        Ok(None) => Ok(None),
        Ok(Some((codec, payload))) => Ok(Some(codec.decode(&payload)?)),
        Err(any) => match any.downcast::<E>() {
            Ok(e) => Err(BuildError::Builder(e)),
            Err(any) => match any.downcast::<Panicked>() {
                Ok(p) => Err(BuildError::Panicked(p.0.clone())),
                // The flight key includes E's type, so the leader's error is always an E.
                Err(_) => Err(BuildError::Codec(CodecError {
                    codec: Codec::default(),
                    op: "decode",
                    message: "builder error of an unexpected type".into(),
                })),
            },
        },
    }
}

/// Follows the key's flight in progress, or registers a new one led by the caller, in the
/// flights of a cache whose write epoch is `epoch`. A flight that started before the cache's
/// last write (another epoch) is not joined: it is replaced.
pub(super) fn join<K: 'static>(all: &Flights, epoch: u64, full: String) -> Join<'_> {
    let key = (full, TypeId::of::<K>());
    let mut flights = lock(all);
    if let Some(f) = flights.map.get_mut(&key)
        && f.epoch == epoch
    {
        return Join::Follow(f.slot().subscribe(), key.0, f.id);
    }
    flights.next_id += 1;
    let id = flights.next_id;
    let entry = FlightEntry {
        id,
        epoch,
        slot: None,
    };
    flights.map.insert(key.clone(), entry);
    Join::Lead(Leader {
        flights: all,
        key,
        id,
        done: false,
    })
}

/// Ends the flight `id` of `key` without an outcome, for a follower that waited `max_wait` for
/// it: its followers start over (one of them leads a successor), and whatever its late leader
/// finishes with is no longer shared. Nothing happens if the flight already ended.
pub(super) fn abandon(all: &Flights, key: &(String, TypeId), id: u64) {
    let mut flights = lock(all);
    if flights.map.get(key).is_some_and(|f| f.id == id) {
        // Dropping the entry drops its channel: its followers see the flight end.
        flights.map.remove(key);
    }
}
