//! The registry of channels.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use serde::Serialize;
use uuid::Uuid;

use crate::bus::BusConfig;
use crate::channel::{Channel, InputState};

/// Settings of the engine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineConfig {
    /// Limits of every channel's bus.
    pub bus: BusConfig,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("the engine is shutting down")]
    ShuttingDown,
}

/// A snapshot of the engine for health endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct EngineHealth {
    pub running: bool,
    pub channels: usize,
    pub live_channels: usize,
}

/// Every open channel, by id.
pub struct Engine {
    config: EngineConfig,
    state: RwLock<State>,
    /// Channels re-encoded to presets (see [`crate::transcode`]).
    pub(crate) renditions: crate::transcode::Renditions,
    /// Source redundancy: switch events of every channel, and settings by channel.
    pub(crate) sources: crate::failover::EngineSources,
}

struct State {
    running: bool,
    channels: HashMap<Uuid, Arc<Channel>>,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Self {
        Self {
            config,
            state: RwLock::new(State {
                running: true,
                channels: HashMap::new(),
            }),
            renditions: Default::default(),
            sources: Default::default(),
        }
    }

    /// Opens the channel `id`, or returns it if it is already open.
    pub fn open_channel(&self, id: Uuid) -> Result<Arc<Channel>, EngineError> {
        let mut state = self.state.write();
        if !state.running {
            return Err(EngineError::ShuttingDown);
        }
        let channel = state.channels.entry(id).or_insert_with(|| {
            tracing::info!(channel = %id, "channel opened");
            Arc::new(self.sources.new_channel(id, self.config.bus.clone()))
        });
        Ok(channel.clone())
    }

    pub fn channel(&self, id: Uuid) -> Option<Arc<Channel>> {
        self.state.read().channels.get(&id).cloned()
    }

    pub fn channels(&self) -> Vec<Arc<Channel>> {
        self.state.read().channels.values().cloned().collect()
    }

    /// Closes and forgets the channel `id`: its inputs are cancelled and its subscribers end.
    /// False if it was not open.
    pub fn close_channel(&self, id: Uuid) -> bool {
        let channel = self.state.write().channels.remove(&id);
        match channel {
            Some(channel) => {
                channel.close();
                tracing::info!(channel = %id, "channel closed");
                true
            }
            None => false,
        }
    }

    /// Refuses new channels and closes every open one.
    pub fn shutdown(&self) {
        let channels: Vec<_> = {
            let mut state = self.state.write();
            state.running = false;
            state.channels.drain().map(|(_, c)| c).collect()
        };
        for channel in channels {
            channel.close();
        }
    }

    pub fn health(&self) -> EngineHealth {
        let (running, channels) = {
            let state = self.state.read();
            let channels: Vec<_> = state.channels.values().cloned().collect();
            (state.running, channels)
        };
        let live_channels = channels
            .iter()
            .filter(|c| c.status().input_state == InputState::Live)
            .count();
        EngineHealth {
            running,
            channels: channels.len(),
            live_channels,
        }
    }
}

impl Default for Engine {
    fn default() -> Self {
        Self::new(EngineConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::AttachMode;
    use crate::frame::{Codec, Frame};
    use bytes::Bytes;

    #[tokio::test]
    async fn registry_opens_finds_closes_and_reports_health() {
        let engine = Engine::default();
        let id = Uuid::new_v4();
        let channel = engine.open_channel(id).unwrap();
        assert!(Arc::ptr_eq(&engine.open_channel(id).unwrap(), &channel));
        assert!(Arc::ptr_eq(&engine.channel(id).unwrap(), &channel));
        assert!(engine.channel(Uuid::new_v4()).is_none());
        engine.open_channel(Uuid::new_v4()).unwrap();

        let input = channel.attach_input("main", AttachMode::Exclusive).unwrap();
        input
            .send(Frame::video(
                Codec::H264,
                true,
                0,
                0,
                Bytes::from_static(b"k"),
            ))
            .unwrap();
        let health = engine.health();
        assert_eq!(
            health,
            EngineHealth {
                running: true,
                channels: 2,
                live_channels: 1
            }
        );

        let mut sub = channel.subscribe();
        assert!(engine.close_channel(id));
        assert!(!engine.close_channel(id));
        assert!(engine.channel(id).is_none());
        assert!(input.is_cancelled());
        assert!(sub.recv().await.is_some()); // the cached keyframe
        assert!(sub.recv().await.is_none());

        engine.shutdown();
        let health = engine.health();
        assert_eq!((health.running, health.channels), (false, 0));
        assert_eq!(
            engine.open_channel(id).err(),
            Some(EngineError::ShuttingDown)
        );
    }
}
