//! The switch between a channel's inputs and its bus, and the output timeline.
//!
//! Today the switch runs in `single` mode: the active input is the earliest attached one still
//! attached, and only its frames reach the bus. A takeover (an encoder reconnecting under the
//! same input name) replaces the active input in place.
//!
//! The seam for failover (`auto_failover`, `manual`, primary/secondary by priority): every
//! attached input already has a slot here and calls [`Switch::forward`]; a standby input's
//! frames are dropped in [`Switch::forward`] where a failover switch would record its liveness
//! (and keep its last GOP, to switch on a keyframe). Choosing another active input is
//! [`Switch::activate`]; everything after it (waiting for the new input's keyframe, rebasing
//! timestamps with [`Timeline`], re-sending configs through the bus's config dedup) already
//! works for any switch, not only a takeover.

use std::sync::Arc;

use tokio::sync::watch;

use crate::bus::BusSender;
use crate::channel::{AttachError, AttachMode, SendError};
use crate::frame::{Frame, Track, TIMESCALE};

/// Maps each input's timestamps onto the channel's continuous output timeline.
///
/// Within one input, output = input + offset. At a discontinuity (another input, or the same
/// encoder reconnecting and restarting at 0) the offset is recomputed from the first frame of
/// the new input so that its dts lands one frame duration after the last output dts. One offset
/// serves both tracks, which keeps the new input's audio/video sync. Output dts of a track never
/// goes backwards: if it would, the offset moves forward just enough.
#[derive(Debug)]
pub(crate) struct Timeline {
    offset: Option<i64>,
    /// Last output dts per track.
    last_dts: [Option<i64>; 2],
    /// Last input dts per track, for the frame duration estimate.
    last_input_dts: [Option<i64>; 2],
    /// Estimated frame duration per track, in 90 kHz ticks.
    frame_duration: [i64; 2],
}

impl Default for Timeline {
    fn default() -> Self {
        Self {
            offset: None,
            last_dts: [None; 2],
            last_input_dts: [None; 2],
            // 30 fps video; AAC frames of 1024 samples at 48 kHz.
            frame_duration: [TIMESCALE / 30, 1024 * TIMESCALE / 48_000],
        }
    }
}

impl Timeline {
    /// The next frame comes from a new input timeline.
    pub(crate) fn discontinuity(&mut self) {
        self.offset = None;
        self.last_input_dts = [None; 2];
    }

    /// Output (dts, pts) for `frame`.
    pub(crate) fn map(&mut self, frame: &Frame) -> (i64, i64) {
        if frame.config {
            // Configs carry no time; give them the current output time.
            let now = self.last_output_dts().unwrap_or(0);
            return (now, now);
        }
        let t = frame.track.index();
        if let Some(prev) = self.last_input_dts[t] {
            let delta = frame.dts - prev;
            if delta > 0 && delta <= TIMESCALE {
                self.frame_duration[t] = delta;
            }
        }
        self.last_input_dts[t] = Some(frame.dts);

        let mut offset = match (self.offset, self.last_output_dts()) {
            (Some(offset), _) => offset,
            // The channel's first frame: the timeline starts at 0.
            (None, None) => -frame.dts,
            (None, Some(last)) => last + self.frame_duration[t] - frame.dts,
        };
        let mut dts = frame.dts + offset;
        if let Some(last) = self.last_dts[t] {
            if dts <= last {
                let bump = last + 1 - dts;
                offset += bump;
                dts += bump;
            }
        }
        self.offset = Some(offset);
        self.last_dts[t] = Some(dts);
        (dts, frame.pts + offset)
    }

    fn last_output_dts(&self) -> Option<i64> {
        self.last_dts.iter().flatten().copied().max()
    }
}

struct InputSlot {
    name: String,
    generation: u64,
    cancel: watch::Sender<bool>,
}

/// Inputs attached to one channel, the active one, and the bus they feed.
pub(crate) struct Switch {
    output: BusSender,
    /// In attach order.
    inputs: Vec<InputSlot>,
    /// Generation of the active input.
    active: Option<u64>,
    next_generation: u64,
    timeline: Timeline,
    /// The active input changed: its video waits for a keyframe.
    awaiting_keyframe: bool,
    closed: bool,
}

impl Switch {
    pub(crate) fn new(output: BusSender) -> Self {
        Self {
            output,
            inputs: Vec::new(),
            active: None,
            next_generation: 1,
            timeline: Timeline::default(),
            awaiting_keyframe: true,
            closed: false,
        }
    }

    /// Attaches an input; its generation and cancel signal identify its handle.
    pub(crate) fn attach(
        &mut self,
        name: &str,
        mode: AttachMode,
    ) -> Result<(u64, watch::Receiver<bool>), AttachError> {
        if self.closed {
            return Err(AttachError::ChannelClosed);
        }
        let generation = self.next_generation;
        let (cancel, cancelled) = watch::channel(false);
        if let Some(slot) = self.inputs.iter_mut().find(|s| s.name == name) {
            if mode == AttachMode::Exclusive {
                return Err(AttachError::InputBusy {
                    name: name.to_owned(),
                });
            }
            // Takeover: the stale handle is told at once and its sends are refused from now on.
            let _ = slot.cancel.send(true);
            let was_active = self.active == Some(slot.generation);
            slot.generation = generation;
            slot.cancel = cancel;
            if was_active {
                self.activate(Some(generation));
            }
        } else {
            self.inputs.push(InputSlot {
                name: name.to_owned(),
                generation,
                cancel,
            });
            if self.active.is_none() {
                self.activate(Some(generation));
            }
        }
        self.next_generation += 1;
        Ok((generation, cancelled))
    }

    /// Detaches the input of `generation` if still attached; true if it was.
    pub(crate) fn detach(&mut self, generation: u64) -> bool {
        let Some(i) = self.inputs.iter().position(|s| s.generation == generation) else {
            return false;
        };
        self.inputs.remove(i);
        if self.active == Some(generation) {
            let next = self.inputs.first().map(|s| s.generation);
            self.activate(next);
        }
        true
    }

    /// Makes `generation` the active input: its frames start at its next video keyframe, on a
    /// rebased timeline.
    pub(crate) fn activate(&mut self, generation: Option<u64>) {
        self.active = generation;
        self.awaiting_keyframe = true;
        self.timeline.discontinuity();
    }

    /// A frame from the input of `generation`. Returns the frame as sent to the bus, or `None`
    /// if the switch held it back (a standby input, or video before the active input's first
    /// keyframe).
    pub(crate) fn forward(
        &mut self,
        generation: u64,
        frame: Frame,
    ) -> Result<Option<Arc<Frame>>, SendError> {
        if self.closed {
            return Err(SendError::ChannelClosed);
        }
        if !self.inputs.iter().any(|s| s.generation == generation) {
            return Err(SendError::Replaced);
        }
        if self.active != Some(generation) {
            // Standby: a failover switch records liveness here.
            return Ok(None);
        }
        if frame.track == Track::Video && !frame.config && self.awaiting_keyframe {
            if !frame.keyframe {
                return Ok(None);
            }
            self.awaiting_keyframe = false;
        }
        let (dts, pts) = self.timeline.map(&frame);
        let frame = Arc::new(frame.with_timestamps(dts, pts));
        self.output
            .send(frame.clone())
            .map_err(|_| SendError::ChannelClosed)?;
        Ok(Some(frame))
    }

    pub(crate) fn close(&mut self) {
        self.closed = true;
        for slot in self.inputs.drain(..) {
            let _ = slot.cancel.send(true);
        }
        self.active = None;
        self.output.close();
    }

    pub(crate) fn active_input(&self) -> Option<&str> {
        let active = self.active?;
        self.inputs
            .iter()
            .find(|s| s.generation == active)
            .map(|s| s.name.as_str())
    }

    pub(crate) fn input_names(&self) -> Vec<String> {
        self.inputs.iter().map(|s| s.name.clone()).collect()
    }

    pub(crate) fn has_inputs(&self) -> bool {
        !self.inputs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Codec;
    use bytes::Bytes;

    fn video(dts: i64, key: bool) -> Frame {
        Frame::video(Codec::H264, key, dts, dts + 6000, Bytes::from_static(b"v"))
    }

    #[test]
    fn first_input_starts_the_timeline_at_zero() {
        let mut tl = Timeline::default();
        assert_eq!(tl.map(&video(5000, true)), (0, 6000));
        assert_eq!(tl.map(&video(8000, false)), (3000, 9000));
    }

    #[test]
    fn restart_at_zero_continues_one_frame_later_then_at_the_input_pace() {
        let mut tl = Timeline::default();
        for i in 0..100 {
            tl.map(&video(i * 1500, i == 0)); // 60 fps
        }
        let last = 99 * 1500;
        tl.discontinuity();
        // The reconnecting encoder restarts at 0, now at 25 fps.
        assert_eq!(tl.map(&video(0, true)).0, last + 1500);
        assert_eq!(tl.map(&video(3600, false)).0, last + 1500 + 3600);
        assert_eq!(
            tl.map(&video(7200, false)),
            (last + 1500 + 7200, last + 1500 + 13200)
        );
    }

    #[test]
    fn one_offset_keeps_audio_video_sync_across_a_switch() {
        let mut tl = Timeline::default();
        tl.map(&video(0, true));
        tl.map(&Frame::audio(100, Bytes::new()));
        tl.map(&video(3000, false));
        tl.discontinuity();
        let (v, _) = tl.map(&video(90_000, true));
        let (a, _) = tl.map(&Frame::audio(90_100, Bytes::new()));
        assert_eq!(v, 3000 + 3000);
        assert_eq!(a - v, 100);
    }

    #[test]
    fn output_dts_never_goes_backwards_within_a_track() {
        let mut tl = Timeline::default();
        tl.map(&video(0, true));
        tl.map(&video(3000, false));
        // The input jumps back.
        let (dts, _) = tl.map(&video(1000, false));
        assert_eq!(dts, 3001);
        assert_eq!(tl.map(&video(4000, false)).0, 6001);
    }

    #[test]
    fn configs_take_the_current_output_time() {
        let mut tl = Timeline::default();
        tl.map(&video(1000, true));
        tl.map(&video(4000, false));
        let config = Frame::video_config(Codec::H264, Bytes::new());
        assert_eq!(tl.map(&config), (3000, 3000));
    }
}
