//! The fill signal: what a channel sends while no input is healthy, so that destinations (and
//! the platforms behind them) keep receiving a valid stream instead of nothing.
//!
//! Video is the last keyframe the outputs received, repeated every [`KEYFRAME_EVERY`], with
//! *skipped* P pictures in between at the stream's frame rate: every macroblock of a skipped
//! picture copies the previous one, so the picture holds still at a few bytes per frame. The
//! skipped pictures are written for the stream's own SPS/PPS (CAVLC and CABAC, frame or field
//! coding without MBAFF), so the decoder configuration does not change and no destination sees
//! a new sequence header. A stream the generator cannot write for (HEVC, MBAFF, slice groups)
//! gets the keyframe alone at [`KEYFRAME_EVERY`].
//!
//! Audio is AAC-LC digital silence in the stream's channel layout, one 1024-sample frame per
//! frame duration of its sample rate. Other AAC profiles get no audio during the fill.
//!
//! Everything here is sans-IO: the switch asks for the frames due up to a point of the fill's
//! own timeline (starting at 0, 90 kHz) and rebases them like any input.

use bytes::{BufMut, Bytes, BytesMut};

use crate::frame::{Codec, Frame, TIMESCALE};

/// The keyframe is repeated this often (90 kHz ticks): a player joining during the fill, or a
/// platform checking the stream, gets a picture within this time.
pub(crate) const KEYFRAME_EVERY: i64 = TIMESCALE;

/// The fill's frames, generated on its own timeline.
pub(crate) struct FillGenerator {
    keyframe: Bytes,
    skip: Option<SkipWriter>,
    video_duration: i64,
    audio: Option<SilentAudio>,
    /// Next video frame: its number since the fill started.
    video_n: i64,
    audio_n: i64,
    /// Pictures since the last keyframe (the skipped pictures' frame_num / POC).
    since_key: u32,
}

struct SilentAudio {
    frame: Bytes,
    sample_rate: i64,
}

impl FillGenerator {
    /// A generator for a stream whose last video config, keyframe and audio config are given;
    /// `None` without a video keyframe to show. `frame_duration` is the stream's video frame
    /// duration in 90 kHz ticks.
    pub(crate) fn new(
        video_config: Option<&Frame>,
        keyframe: Option<&Frame>,
        audio_config: Option<&Frame>,
        frame_duration: i64,
    ) -> Option<Self> {
        let keyframe = keyframe.filter(|k| k.is_video_keyframe())?;
        let skip = match (keyframe.codec, video_config) {
            (Codec::H264, Some(config)) => SkipWriter::from_avc_config(&config.data),
            _ => None,
        };
        let audio = audio_config.and_then(|c| SilentAudio::from_config(&c.data));
        Some(Self {
            keyframe: keyframe.data.clone(),
            skip,
            video_duration: frame_duration.clamp(TIMESCALE / 120, TIMESCALE / 5),
            audio,
            video_n: 0,
            audio_n: 0,
            since_key: 0,
        })
    }

    /// Whether the still picture is held with skipped pictures (else keyframes alone).
    pub(crate) fn has_skip_pictures(&self) -> bool {
        self.skip.is_some()
    }

    /// The frames due at or before `until` (fill timeline), in time order.
    pub(crate) fn frames_until(&mut self, until: i64) -> Vec<Frame> {
        let mut out = Vec::new();
        loop {
            let video_at = self.video_n * self.video_duration;
            let audio_at = self
                .audio
                .as_ref()
                .map(|a| self.audio_n * 1024 * TIMESCALE / a.sample_rate);
            let next_is_audio = audio_at.is_some_and(|a| a < video_at);
            let at = if next_is_audio {
                audio_at.unwrap_or(video_at)
            } else {
                video_at
            };
            if at > until {
                return out;
            }
            if next_is_audio {
                if let Some(a) = &self.audio {
                    out.push(Frame::audio(at, a.frame.clone()));
                }
                self.audio_n += 1;
                continue;
            }
            let key_period = (KEYFRAME_EVERY / self.video_duration).max(1);
            if self.video_n % key_period == 0 {
                self.since_key = 0;
                out.push(Frame::video(
                    Codec::H264,
                    true,
                    at,
                    at,
                    self.keyframe.clone(),
                ));
            } else if let Some(skip) = &self.skip {
                self.since_key += 1;
                out.push(Frame::video(
                    Codec::H264,
                    false,
                    at,
                    at,
                    skip.picture(self.since_key),
                ));
            }
            self.video_n += 1;
        }
    }
}

impl SilentAudio {
    /// AAC-LC silence for the AudioSpecificConfig `asc`; `None` for other profiles.
    fn from_config(asc: &[u8]) -> Option<Self> {
        let parsed = lunora_flv::AudioSpecificConfig::parse(asc).ok()?;
        if parsed.object_type != 2 || parsed.sampling_frequency == 0 {
            return None;
        }
        // Raw AAC-LC frames that decode to silence, by channel configuration (as players such
        // as hls.js insert them to fill audio gaps).
        let frame: &'static [u8] = match parsed.channel_configuration {
            1 => &[0x00, 0xc8, 0x00, 0x80, 0x23, 0x80],
            2 => &[0x21, 0x00, 0x49, 0x90, 0x02, 0x19, 0x00, 0x23, 0x80],
            3 => &[
                0x00, 0xc8, 0x00, 0x80, 0x20, 0x84, 0x01, 0x26, 0x40, 0x08, 0x64, 0x00, 0x8e,
            ],
            4 => &[
                0x00, 0xc8, 0x00, 0x80, 0x20, 0x84, 0x01, 0x26, 0x40, 0x08, 0x64, 0x00, 0x80, 0x2c,
                0x80, 0x08, 0x02, 0x38,
            ],
            5 => &[
                0x00, 0xc8, 0x00, 0x80, 0x20, 0x84, 0x01, 0x26, 0x40, 0x08, 0x64, 0x00, 0x82, 0x30,
                0x04, 0x99, 0x00, 0x21, 0x90, 0x02, 0x38,
            ],
            6 => &[
                0x00, 0xc8, 0x00, 0x80, 0x20, 0x84, 0x01, 0x26, 0x40, 0x08, 0x64, 0x00, 0x82, 0x30,
                0x04, 0x99, 0x00, 0x21, 0x90, 0x02, 0x00, 0xb2, 0x00, 0x20, 0x08, 0xe0,
            ],
            _ => return None,
        };
        Some(SilentAudio {
            frame: Bytes::from_static(frame),
            sample_rate: i64::from(parsed.sampling_frequency),
        })
    }
}

// ---- H.264 skipped P pictures ----

/// What a P slice header needs from the SPS and PPS.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SliceParams {
    pps_id: u32,
    log2_max_frame_num: u32,
    poc_type: u32,
    log2_max_poc_lsb: u32,
    delta_pic_order_always_zero: bool,
    frame_mbs_only: bool,
    chroma_array_type: u32,
    bottom_field_pic_order_in_frame_present: bool,
    num_ref_idx_l0_active: u32,
    weighted_pred: bool,
    redundant_pic_cnt_present: bool,
    deblocking_filter_control_present: bool,
    cabac: bool,
    /// SliceQPY with slice_qp_delta 0.
    slice_qp: i32,
    mbs: u32,
}

/// Writes skipped P pictures for one SPS/PPS pair.
struct SkipWriter {
    params: SliceParams,
}

impl SkipWriter {
    /// From an AVCDecoderConfigurationRecord (its first SPS and PPS).
    fn from_avc_config(record: &[u8]) -> Option<Self> {
        let (sps, pps) = first_parameter_sets(record)?;
        let params = parse_params(&sps, &pps)?;
        Some(SkipWriter { params })
    }

    /// The `n`th picture after the keyframe (n ≥ 1), as one AVCC (4-byte length) NAL unit.
    fn picture(&self, n: u32) -> Bytes {
        let p = &self.params;
        let mut w = BitWriter::default();
        w.ue(0); // first_mb_in_slice
        w.ue(5); // slice_type: P (all slices of the picture)
        w.ue(p.pps_id);
        w.bits(n & ((1 << p.log2_max_frame_num) - 1), p.log2_max_frame_num); // frame_num
        if !p.frame_mbs_only {
            w.bit(false); // field_pic_flag
        }
        if p.poc_type == 0 {
            let lsb = (2 * n) & ((1 << p.log2_max_poc_lsb) - 1);
            w.bits(lsb, p.log2_max_poc_lsb);
            if p.bottom_field_pic_order_in_frame_present {
                w.se(0); // delta_pic_order_cnt_bottom
            }
        }
        if p.poc_type == 1 && !p.delta_pic_order_always_zero {
            w.se(0);
            if p.bottom_field_pic_order_in_frame_present {
                w.se(0);
            }
        }
        if p.redundant_pic_cnt_present {
            w.ue(0);
        }
        // One reference (the previous picture): right after the keyframe there is no other.
        if p.num_ref_idx_l0_active > 1 {
            w.bit(true); // num_ref_idx_active_override_flag
            w.ue(0); // num_ref_idx_l0_active_minus1
        } else {
            w.bit(false);
        }
        w.bit(false); // ref_pic_list_modification_flag_l0
        if p.weighted_pred {
            w.ue(0); // luma_log2_weight_denom
            if p.chroma_array_type != 0 {
                w.ue(0); // chroma_log2_weight_denom
            }
            w.bit(false); // luma_weight_l0_flag (of the one reference)
            if p.chroma_array_type != 0 {
                w.bit(false); // chroma_weight_l0_flag
            }
        }
        w.bit(false); // dec_ref_pic_marking: adaptive_ref_pic_marking_mode_flag (sliding window)
        if p.cabac {
            w.ue(0); // cabac_init_idc
        }
        w.se(0); // slice_qp_delta
        if p.deblocking_filter_control_present {
            w.ue(1); // disable_deblocking_filter_idc: nothing to filter
        }
        if p.cabac {
            while !w.aligned() {
                w.bit(true); // cabac_alignment_one_bit
            }
            let mut enc = Cabac::new(p.slice_qp);
            for mb in 0..p.mbs {
                enc.skip_flag(&mut w);
                enc.terminate(&mut w, mb + 1 == p.mbs);
            }
        } else {
            w.ue(p.mbs); // mb_skip_run: every macroblock
            w.bit(true); // rbsp_stop_one_bit
        }
        w.align_zero();
        let rbsp = w.finish();
        // NAL header: nal_ref_idc 2 (a reference picture, so frame_num counts up), type 1.
        let mut nal = Vec::with_capacity(rbsp.len() + 8);
        nal.push(0x41);
        escape(&rbsp, &mut nal);
        let mut out = BytesMut::with_capacity(nal.len() + 4);
        out.put_u32(nal.len() as u32);
        out.put_slice(&nal);
        out.freeze()
    }
}

/// The first SPS and PPS NAL units of an AVCDecoderConfigurationRecord.
fn first_parameter_sets(r: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut i = 5;
    let num_sps = usize::from(*r.get(i)? & 0x1f);
    i += 1;
    let mut sps = None;
    for _ in 0..num_sps {
        let len = usize::from(u16::from_be_bytes([*r.get(i)?, *r.get(i + 1)?]));
        let nal = r.get(i + 2..i + 2 + len)?;
        sps.get_or_insert_with(|| nal.to_vec());
        i += 2 + len;
    }
    let num_pps = usize::from(*r.get(i)?);
    i += 1;
    let mut pps = None;
    for _ in 0..num_pps {
        let len = usize::from(u16::from_be_bytes([*r.get(i)?, *r.get(i + 1)?]));
        let nal = r.get(i + 2..i + 2 + len)?;
        pps.get_or_insert_with(|| nal.to_vec());
        i += 2 + len;
    }
    Some((sps?, pps?))
}

/// Reads what a skipped P slice needs; `None` for what it cannot be written for.
fn parse_params(sps_nal: &[u8], pps_nal: &[u8]) -> Option<SliceParams> {
    if sps_nal.first()? & 0x1f != 7 || pps_nal.first()? & 0x1f != 8 {
        return None;
    }
    let sps = unescape(&sps_nal[1..]);
    let mut r = BitReader::new(&sps);
    let profile_idc = r.bits(8)?;
    r.bits(16)?; // constraint flags, level_idc
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format_idc = 1;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 && r.bit()? {
            return None; // separate colour planes
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i64, 8i64);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + r.se()? + 256) % 256;
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    let log2_max_frame_num = r.ue()? + 4;
    let poc_type = r.ue()?;
    let mut log2_max_poc_lsb = 0;
    let mut delta_pic_order_always_zero = false;
    match poc_type {
        0 => log2_max_poc_lsb = r.ue()? + 4,
        1 => {
            delta_pic_order_always_zero = r.bit()?;
            r.se()?;
            r.se()?;
            let cycle = r.ue()?;
            if cycle > 255 {
                return None;
            }
            for _ in 0..cycle {
                r.se()?;
            }
        }
        2 => {}
        _ => return None,
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue()? + 1;
    let height_map_units = r.ue()? + 1;
    let frame_mbs_only = r.bit()?;
    if !frame_mbs_only && r.bit()? {
        return None; // MBAFF: skipped macroblock pairs need field decoding flags
    }
    if log2_max_frame_num > 16 || log2_max_poc_lsb > 16 {
        return None;
    }
    let mbs = width_mbs
        .checked_mul(height_map_units)?
        .checked_mul(if frame_mbs_only { 1 } else { 2 })?;
    if mbs == 0 || mbs > 139_264 {
        return None;
    }

    let pps = unescape(&pps_nal[1..]);
    let mut r = BitReader::new(&pps);
    let pps_id = r.ue()?;
    r.ue()?; // seq_parameter_set_id
    let cabac = r.bit()?;
    let bottom_field_pic_order_in_frame_present = r.bit()?;
    if r.ue()? != 0 {
        return None; // slice groups
    }
    let num_ref_idx_l0_active = r.ue()? + 1;
    r.ue()?; // num_ref_idx_l1_default_active_minus1
    let weighted_pred = r.bit()?;
    r.bits(2)?; // weighted_bipred_idc
    let pic_init_qp = 26 + i32::try_from(r.se()?).ok()?;
    r.se()?; // pic_init_qs_minus26
    r.se()?; // chroma_qp_index_offset
    let deblocking_filter_control_present = r.bit()?;
    r.bit()?; // constrained_intra_pred_flag
    let redundant_pic_cnt_present = r.bit()?;
    if pps_id > 255 || num_ref_idx_l0_active > 32 {
        return None;
    }
    Some(SliceParams {
        pps_id,
        log2_max_frame_num,
        poc_type,
        log2_max_poc_lsb,
        delta_pic_order_always_zero,
        frame_mbs_only,
        chroma_array_type: chroma_format_idc,
        bottom_field_pic_order_in_frame_present,
        num_ref_idx_l0_active,
        weighted_pred,
        redundant_pic_cnt_present,
        deblocking_filter_control_present,
        cabac,
        slice_qp: pic_init_qp,
        mbs,
    })
}

/// NAL payload → RBSP (emulation prevention bytes removed).
fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// RBSP → NAL payload (emulation prevention bytes inserted).
fn escape(rbsp: &[u8], out: &mut Vec<u8>) {
    let mut zeros = 0;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
}

struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    fn bit(&mut self) -> Option<bool> {
        let byte = self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(b == 1)
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | u32::from(self.bit()?);
        }
        Some(v)
    }

    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        Some(((1u64 << zeros) - 1 + u64::from(rest)).min(u64::from(u32::MAX)) as u32)
    }

    fn se(&mut self) -> Option<i64> {
        let k = i64::from(self.ue()?);
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    cur: u8,
    n: u8,
}

impl BitWriter {
    fn bit(&mut self, b: bool) {
        self.cur = (self.cur << 1) | u8::from(b);
        self.n += 1;
        if self.n == 8 {
            self.out.push(self.cur);
            self.cur = 0;
            self.n = 0;
        }
    }

    fn bits(&mut self, v: u32, n: u32) {
        for i in (0..n).rev() {
            self.bit((v >> i) & 1 == 1);
        }
    }

    fn ue(&mut self, v: u32) {
        let x = u64::from(v) + 1;
        let len = 64 - x.leading_zeros();
        for _ in 0..len - 1 {
            self.bit(false);
        }
        for i in (0..len).rev() {
            self.bit((x >> i) & 1 == 1);
        }
    }

    fn se(&mut self, v: i32) {
        let k = if v > 0 {
            2 * v as u32 - 1
        } else {
            2 * v.unsigned_abs()
        };
        self.ue(k);
    }

    fn aligned(&self) -> bool {
        self.n == 0
    }

    fn align_zero(&mut self) {
        while !self.aligned() {
            self.bit(false);
        }
    }

    fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// The CABAC encoding engine (H.264 9.3.4) with the one context a skipped P macroblock needs:
/// mb_skip_flag with ctxIdxInc 0 (ctxIdx 11; every neighbour is skipped or unavailable).
struct Cabac {
    low: u32,
    range: u32,
    first_bit: bool,
    outstanding: u32,
    state: u8,
    mps: bool,
}

impl Cabac {
    fn new(slice_qp: i32) -> Self {
        // Table 9-13, ctxIdx 11, cabac_init_idc 0: (m, n) = (23, 33).
        let (m, n) = (23, 33);
        let pre = (((m * slice_qp.clamp(0, 51)) >> 4) + n).clamp(1, 126);
        let (state, mps) = if pre <= 63 {
            ((63 - pre) as u8, false)
        } else {
            ((pre - 64) as u8, true)
        };
        Cabac {
            low: 0,
            range: 510,
            first_bit: true,
            outstanding: 0,
            state,
            mps,
        }
    }

    fn put_bit(&mut self, w: &mut BitWriter, b: bool) {
        if self.first_bit {
            self.first_bit = false;
        } else {
            w.bit(b);
        }
        while self.outstanding > 0 {
            w.bit(!b);
            self.outstanding -= 1;
        }
    }

    fn renorm(&mut self, w: &mut BitWriter) {
        while self.range < 256 {
            if self.low < 256 {
                self.put_bit(w, false);
            } else if self.low >= 512 {
                self.low -= 512;
                self.put_bit(w, true);
            } else {
                self.low -= 256;
                self.outstanding += 1;
            }
            self.range <<= 1;
            self.low <<= 1;
        }
    }

    /// mb_skip_flag = 1.
    fn skip_flag(&mut self, w: &mut BitWriter) {
        let lps =
            u32::from(RANGE_TAB_LPS[usize::from(self.state)][((self.range >> 6) & 3) as usize]);
        self.range -= lps;
        if self.mps {
            self.state = TRANS_IDX_MPS[usize::from(self.state)];
        } else {
            self.low += self.range;
            self.range = lps;
            if self.state == 0 {
                self.mps = !self.mps;
            }
            self.state = TRANS_IDX_LPS[usize::from(self.state)];
        }
        self.renorm(w);
    }

    /// end_of_slice_flag; the last one flushes (its final bit is the rbsp_stop_one_bit).
    fn terminate(&mut self, w: &mut BitWriter, last: bool) {
        self.range -= 2;
        if last {
            self.low += self.range;
            self.range = 2;
            self.renorm(w);
            self.put_bit(w, (self.low >> 9) & 1 == 1);
            w.bits(((self.low >> 7) & 3) | 1, 2);
        } else {
            self.renorm(w);
        }
    }
}

/// H.264 Table 9-44: rangeTabLPS[pStateIdx][qCodIRangeIdx].
const RANGE_TAB_LPS: [[u8; 4]; 64] = [
    [128, 176, 208, 240],
    [128, 167, 197, 227],
    [128, 158, 187, 216],
    [123, 150, 178, 205],
    [116, 142, 169, 195],
    [111, 135, 160, 185],
    [105, 128, 152, 175],
    [100, 122, 144, 166],
    [95, 116, 137, 158],
    [90, 110, 130, 150],
    [85, 104, 123, 142],
    [81, 99, 117, 135],
    [77, 94, 111, 128],
    [73, 89, 105, 122],
    [69, 85, 100, 116],
    [66, 80, 95, 110],
    [62, 76, 90, 104],
    [59, 72, 86, 99],
    [56, 69, 81, 94],
    [53, 65, 77, 89],
    [51, 62, 73, 85],
    [48, 59, 69, 80],
    [46, 56, 66, 76],
    [43, 53, 63, 72],
    [41, 50, 59, 69],
    [39, 48, 56, 65],
    [37, 45, 54, 62],
    [35, 43, 51, 59],
    [33, 41, 48, 56],
    [32, 39, 46, 53],
    [30, 37, 43, 50],
    [29, 35, 41, 48],
    [27, 33, 39, 45],
    [26, 31, 37, 43],
    [24, 30, 35, 41],
    [23, 28, 33, 39],
    [22, 27, 32, 37],
    [21, 26, 30, 35],
    [20, 24, 29, 33],
    [19, 23, 27, 31],
    [18, 22, 26, 30],
    [17, 21, 25, 28],
    [16, 20, 23, 27],
    [15, 19, 22, 25],
    [14, 18, 21, 24],
    [14, 17, 20, 23],
    [13, 16, 19, 22],
    [12, 15, 18, 21],
    [12, 14, 17, 20],
    [11, 14, 16, 19],
    [11, 13, 15, 18],
    [10, 12, 15, 17],
    [10, 12, 14, 16],
    [9, 11, 13, 15],
    [9, 11, 12, 14],
    [8, 10, 12, 14],
    [8, 9, 11, 13],
    [7, 9, 11, 12],
    [7, 9, 10, 12],
    [7, 8, 10, 11],
    [6, 8, 9, 11],
    [6, 7, 9, 10],
    [6, 7, 8, 9],
    [2, 2, 2, 2],
];

/// H.264 Table 9-45: transIdxLPS.
const TRANS_IDX_LPS: [u8; 64] = [
    0, 0, 1, 2, 2, 4, 4, 5, 6, 7, 8, 9, 9, 11, 11, 12, 13, 13, 15, 15, 16, 16, 18, 18, 19, 19, 21,
    21, 22, 22, 23, 24, 24, 25, 26, 26, 27, 27, 28, 29, 29, 30, 30, 30, 31, 32, 32, 33, 33, 33, 34,
    34, 35, 35, 35, 36, 36, 36, 37, 37, 37, 38, 38, 63,
];

/// H.264 Table 9-45: transIdxMPS.
const TRANS_IDX_MPS: [u8; 64] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26,
    27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50,
    51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 62, 63,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Track;

    #[test]
    fn exp_golomb_round_trips() {
        let mut w = BitWriter::default();
        for v in [0u32, 1, 2, 3, 7, 8, 255, 3600, 100_000] {
            w.ue(v);
        }
        for v in [0i32, 1, -1, 2, -2, 40, -40] {
            w.se(v);
        }
        w.align_zero();
        let data = w.finish();
        let mut r = BitReader::new(&data);
        for v in [0u32, 1, 2, 3, 7, 8, 255, 3600, 100_000] {
            assert_eq!(r.ue(), Some(v));
        }
        for v in [0i64, 1, -1, 2, -2, 40, -40] {
            assert_eq!(r.se(), Some(v));
        }
    }

    #[test]
    fn emulation_prevention_round_trips() {
        let rbsp = [0u8, 0, 0, 1, 0, 0, 3, 0, 0, 2, 5];
        let mut nal = Vec::new();
        escape(&rbsp, &mut nal);
        assert_eq!(nal, [0, 0, 3, 0, 1, 0, 0, 3, 3, 0, 0, 3, 2, 5]);
        assert_eq!(unescape(&nal), rbsp);
    }

    #[test]
    fn garbage_parameter_sets_are_refused_not_panicked_on() {
        assert!(SkipWriter::from_avc_config(&[]).is_none());
        assert!(SkipWriter::from_avc_config(&[1, 2, 3, 4, 5, 0xe1, 0, 50, 7]).is_none());
        for len in 0..40 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let _ = parse_params(
                &[&[0x67][..], &junk].concat(),
                &[&[0x68][..], &junk].concat(),
            );
        }
    }

    /// Decodes skipped pictures written for real x264 parameter sets (CAVLC, CABAC, CABAC with
    /// B-frames in the source) with FFmpeg: no decoder error, and every picture is the keyframe.
    #[test]
    fn ffmpeg_decodes_the_skipped_pictures_as_the_keyframe_held_still() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let ffmpeg_ok = std::process::Command::new("ffmpeg")
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ffmpeg_ok {
            eprintln!("ffmpeg not installed: skipped");
            return;
        }
        for (name, args) in [
            ("cavlc", &["-preset", "ultrafast"][..]),
            ("cabac", &["-preset", "veryfast", "-bf", "0"][..]),
            (
                "cabac-b",
                &["-preset", "veryfast", "-pix_fmt", "yuv420p"][..],
            ),
            (
                "interlaced",
                &["-preset", "veryfast", "-flags", "+ildct+ilme"][..],
            ),
            (
                "weighted",
                &["-preset", "medium", "-weightp", "2", "-refs", "3"][..],
            ),
        ] {
            let src = dir.path().join(format!("{name}.h264"));
            let out = std::process::Command::new("ffmpeg")
                .args([
                    "-v",
                    "error",
                    "-y",
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc2=size=208x120:rate=30",
                ])
                .args(["-t", "0.2", "-c:v", "libx264"])
                .args(args)
                .args(["-f", "h264"])
                .arg(&src)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let data = std::fs::read(&src).unwrap();
            let nals = lunora_flv::annexb_nalus(&Bytes::from(data));
            let find = |t: u8| nals.iter().find(|n| n[0] & 0x1f == t).unwrap().clone();
            let (sps, pps, idr) = (find(7), find(8), find(5));
            let record = lunora_flv::AvcDecoderConfigurationRecord::from_parameter_sets(
                std::slice::from_ref(&sps),
                std::slice::from_ref(&pps),
            )
            .unwrap()
            .encode()
            .unwrap();
            let Some(writer) = SkipWriter::from_avc_config(&record) else {
                // x264's interlaced coding is MBAFF: refused (keyframes alone then).
                assert_eq!(name, "interlaced", "{name}: no skip writer");
                continue;
            };
            assert_ne!(name, "interlaced");
            let mut stream = Vec::new();
            for nal in [&sps, &pps, &idr] {
                stream.extend_from_slice(&[0, 0, 0, 1]);
                stream.extend_from_slice(nal);
            }
            for n in 1..=40u32 {
                let pic = writer.picture(n);
                stream.extend_from_slice(&[0, 0, 0, 1]);
                stream.extend_from_slice(&pic[4..]);
            }
            let file = dir.path().join(format!("{name}-fill.h264"));
            std::fs::write(&file, &stream).unwrap();
            let out = std::process::Command::new("ffmpeg")
                .args(["-v", "error", "-xerror", "-i"])
                .arg(&file)
                .args(["-f", "framemd5", "-"])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && err.trim().is_empty(),
                "{name}: {err}"
            );
            let md5s: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_string()))
                .collect();
            assert_eq!(md5s.len(), 41, "{name}: every picture decodes");
            assert!(
                md5s.iter().all(|h| *h == md5s[0]),
                "{name}: a still picture"
            );
        }
    }

    #[test]
    fn fill_timeline_interleaves_video_and_audio_at_their_rates() {
        let key = Frame::video(
            Codec::H264,
            true,
            0,
            0,
            Bytes::from_static(b"\0\0\0\x01\x65"),
        );
        // AAC-LC, 48 kHz, stereo.
        let asc = Frame::audio_config(Bytes::from_static(&[0x11, 0x90]));
        let mut g = FillGenerator::new(None, Some(&key), Some(&asc), 3000).unwrap();
        let frames = g.frames_until(TIMESCALE - 1);
        let video: Vec<_> = frames.iter().filter(|f| f.track == Track::Video).collect();
        let audio: Vec<_> = frames.iter().filter(|f| f.track == Track::Audio).collect();
        // No SPS/PPS: the keyframe alone, once a second.
        assert_eq!(video.len(), 1);
        assert!(video[0].keyframe);
        // 48000 / 1024 frames a second.
        assert_eq!(audio.len(), 47);
        assert!(frames.windows(2).all(|w| w[0].dts <= w[1].dts));
        let more = g.frames_until(TIMESCALE);
        assert!(more
            .iter()
            .any(|f| f.is_video_keyframe() && f.dts == TIMESCALE));
    }
}
