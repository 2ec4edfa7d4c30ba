//! H.264: AVCDecoderConfigurationRecord, the sequence parameter set, and conversions between
//! Annex B (start codes, as MPEG-TS and SRT carry it) and AVCC (length prefixes, as FLV and
//! RTMP carry it).

use bytes::{BufMut, Bytes, BytesMut};

use crate::bits::{nal_to_rbsp, BitReader};
use crate::error::need;
use crate::FlvError;

/// H.264 NAL unit types this crate cares about.
pub mod nal_type {
    /// Coded slice of a non-IDR picture.
    pub const SLICE: u8 = 1;
    /// Coded slice of an IDR picture.
    pub const IDR: u8 = 5;
    /// Supplemental enhancement information.
    pub const SEI: u8 = 6;
    /// Sequence parameter set.
    pub const SPS: u8 = 7;
    /// Picture parameter set.
    pub const PPS: u8 = 8;
    /// Access unit delimiter.
    pub const AUD: u8 = 9;
}

/// The NAL unit type (low 5 bits of the first byte), or `None` for an empty unit.
pub fn nal_unit_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| b & 0x1F)
}

/// Largest number of parameter sets of one kind a record may hold (the SPS count has 5 bits).
const MAX_PARAMETER_SETS: usize = 31;

/// Extra fields that follow the PPS list for the High profiles (100, 110, 122, 144).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcHighProfileExt {
    /// chroma_format_idc (0..=3).
    pub chroma_format: u8,
    /// bit_depth_luma_minus8 (0..=7).
    pub bit_depth_luma_minus8: u8,
    /// bit_depth_chroma_minus8 (0..=7).
    pub bit_depth_chroma_minus8: u8,
    /// SequenceParameterSetExt NAL units.
    pub sps_ext: Vec<Bytes>,
}

/// ISO/IEC 14496-15 AVCDecoderConfigurationRecord: the body of an FLV AVC sequence header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcDecoderConfigurationRecord {
    /// configurationVersion (always 1).
    pub configuration_version: u8,
    /// AVCProfileIndication (profile_idc of the SPS).
    pub profile_indication: u8,
    /// profile_compatibility (the constraint flags byte of the SPS).
    pub profile_compatibility: u8,
    /// AVCLevelIndication (level_idc of the SPS).
    pub level_indication: u8,
    /// Size in bytes of the NAL unit length prefix in coded frames: 1, 2 or 4.
    pub nal_length_size: u8,
    /// Sequence parameter sets (NAL units with their header byte), zero-copy slices.
    pub sps: Vec<Bytes>,
    /// Picture parameter sets (NAL units with their header byte), zero-copy slices.
    pub pps: Vec<Bytes>,
    /// High-profile extension, when present.
    pub high_profile_ext: Option<AvcHighProfileExt>,
}

fn is_high_profile(profile: u8) -> bool {
    matches!(profile, 100 | 110 | 122 | 144)
}

fn read_nal_list(
    data: &Bytes,
    pos: &mut usize,
    count: usize,
    what: &'static str,
) -> Result<Vec<Bytes>, FlvError> {
    let mut out = Vec::with_capacity(count.min(MAX_PARAMETER_SETS));
    for _ in 0..count {
        need(what, &data[*pos..], 2)?;
        let len = usize::from(u16::from_be_bytes([data[*pos], data[*pos + 1]]));
        *pos += 2;
        need(what, &data[*pos..], len)?;
        if len == 0 {
            return Err(FlvError::invalid(what, "empty parameter set"));
        }
        out.push(data.slice(*pos..*pos + len));
        *pos += len;
    }
    Ok(out)
}

impl AvcDecoderConfigurationRecord {
    /// Parses a record. Parameter sets are zero-copy slices of `data`.
    pub fn parse(data: Bytes) -> Result<Self, FlvError> {
        const WHAT: &str = "AVCDecoderConfigurationRecord";
        need(WHAT, &data, 6)?;
        if data[0] != 1 {
            return Err(FlvError::Unsupported {
                what: "AVCDecoderConfigurationRecord version",
                value: u32::from(data[0]),
            });
        }
        let nal_length_size = (data[4] & 0x03) + 1;
        if nal_length_size == 3 {
            return Err(FlvError::invalid(WHAT, "NAL length size of 3 bytes"));
        }
        let num_sps = usize::from(data[5] & 0x1F);
        let mut pos = 6;
        let sps = read_nal_list(&data, &mut pos, num_sps, WHAT)?;
        need(WHAT, &data[pos..], 1)?;
        let num_pps = usize::from(data[pos]);
        pos += 1;
        let pps = read_nal_list(&data, &mut pos, num_pps, WHAT)?;
        let mut high_profile_ext = None;
        // The extension is optional in practice: many muxers omit it even for High profile.
        if is_high_profile(data[1]) && data.len() >= pos + 4 {
            let chroma_format = data[pos] & 0x03;
            let bit_depth_luma_minus8 = data[pos + 1] & 0x07;
            let bit_depth_chroma_minus8 = data[pos + 2] & 0x07;
            let n = usize::from(data[pos + 3]);
            pos += 4;
            let sps_ext = read_nal_list(&data, &mut pos, n, WHAT)?;
            high_profile_ext = Some(AvcHighProfileExt {
                chroma_format,
                bit_depth_luma_minus8,
                bit_depth_chroma_minus8,
                sps_ext,
            });
        }
        Ok(AvcDecoderConfigurationRecord {
            configuration_version: data[0],
            profile_indication: data[1],
            profile_compatibility: data[2],
            level_indication: data[3],
            nal_length_size,
            sps,
            pps,
            high_profile_ext,
        })
    }

    /// Builds a record (NAL length size 4) from SPS and PPS NAL units (with header bytes,
    /// without start codes), e.g. as found in an Annex B keyframe.
    pub fn from_parameter_sets(sps: &[Bytes], pps: &[Bytes]) -> Result<Self, FlvError> {
        const WHAT: &str = "AVC parameter sets";
        let first = sps
            .first()
            .ok_or_else(|| FlvError::invalid(WHAT, "no SPS"))?;
        if pps.is_empty() {
            return Err(FlvError::invalid(WHAT, "no PPS"));
        }
        if sps.len() > MAX_PARAMETER_SETS || pps.len() > 255 {
            return Err(FlvError::TooLarge {
                what: WHAT,
                len: sps.len().max(pps.len()),
                max: MAX_PARAMETER_SETS,
            });
        }
        for s in sps {
            if nal_unit_type(s) != Some(nal_type::SPS) {
                return Err(FlvError::invalid(WHAT, "SPS list holds a non-SPS NAL unit"));
            }
        }
        for p in pps {
            if nal_unit_type(p) != Some(nal_type::PPS) {
                return Err(FlvError::invalid(WHAT, "PPS list holds a non-PPS NAL unit"));
            }
        }
        let parsed = Sps::parse(first)?;
        let high_profile_ext = is_high_profile(parsed.profile_idc).then(|| AvcHighProfileExt {
            chroma_format: parsed.chroma_format_idc,
            bit_depth_luma_minus8: parsed.bit_depth_luma.saturating_sub(8),
            bit_depth_chroma_minus8: parsed.bit_depth_chroma.saturating_sub(8),
            sps_ext: Vec::new(),
        });
        Ok(AvcDecoderConfigurationRecord {
            configuration_version: 1,
            profile_indication: parsed.profile_idc,
            profile_compatibility: parsed.constraint_flags,
            level_indication: parsed.level_idc,
            nal_length_size: 4,
            sps: sps.to_vec(),
            pps: pps.to_vec(),
            high_profile_ext,
        })
    }

    /// Serializes the record.
    pub fn encode(&self) -> Result<Bytes, FlvError> {
        const WHAT: &str = "AVCDecoderConfigurationRecord";
        if !matches!(self.nal_length_size, 1 | 2 | 4) {
            return Err(FlvError::invalid(WHAT, "NAL length size must be 1, 2 or 4"));
        }
        if self.sps.len() > MAX_PARAMETER_SETS || self.pps.len() > 255 {
            return Err(FlvError::invalid(WHAT, "too many parameter sets"));
        }
        let mut out = BytesMut::with_capacity(16);
        out.put_u8(self.configuration_version);
        out.put_u8(self.profile_indication);
        out.put_u8(self.profile_compatibility);
        out.put_u8(self.level_indication);
        out.put_u8(0xFC | (self.nal_length_size - 1));
        out.put_u8(0xE0 | self.sps.len() as u8);
        put_nal_list(&mut out, &self.sps)?;
        out.put_u8(self.pps.len() as u8);
        put_nal_list(&mut out, &self.pps)?;
        if let Some(ext) = &self.high_profile_ext {
            if ext.sps_ext.len() > 255 {
                return Err(FlvError::invalid(WHAT, "too many SPS extensions"));
            }
            out.put_u8(0xFC | (ext.chroma_format & 3));
            out.put_u8(0xF8 | (ext.bit_depth_luma_minus8 & 7));
            out.put_u8(0xF8 | (ext.bit_depth_chroma_minus8 & 7));
            out.put_u8(ext.sps_ext.len() as u8);
            put_nal_list(&mut out, &ext.sps_ext)?;
        }
        Ok(out.freeze())
    }

    /// Parses the first SPS of the record.
    pub fn parse_sps(&self) -> Result<Sps, FlvError> {
        let first = self
            .sps
            .first()
            .ok_or_else(|| FlvError::invalid("AVCDecoderConfigurationRecord", "no SPS"))?;
        Sps::parse(first)
    }
}

fn put_nal_list(out: &mut BytesMut, list: &[Bytes]) -> Result<(), FlvError> {
    for nal in list {
        let len = u16::try_from(nal.len()).map_err(|_| FlvError::TooLarge {
            what: "parameter set",
            len: nal.len(),
            max: usize::from(u16::MAX),
        })?;
        out.put_u16(len);
        out.put_slice(nal);
    }
    Ok(())
}

/// The fields of an H.264 sequence parameter set that a media server needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Sps {
    /// profile_idc (66 Baseline, 77 Main, 100 High, ...).
    pub profile_idc: u8,
    /// The constraint_set flags byte.
    pub constraint_flags: u8,
    /// level_idc (e.g. 31 for level 3.1).
    pub level_idc: u8,
    /// seq_parameter_set_id.
    pub id: u32,
    /// chroma_format_idc (1 = 4:2:0 unless the profile says otherwise).
    pub chroma_format_idc: u8,
    /// Luma bit depth (8 unless the profile says otherwise).
    pub bit_depth_luma: u8,
    /// Chroma bit depth.
    pub bit_depth_chroma: u8,
    /// Display width in pixels, after cropping.
    pub width: u32,
    /// Display height in pixels, after cropping.
    pub height: u32,
    /// Whether pictures are frames only (no field coding).
    pub frame_mbs_only: bool,
    /// Sample aspect ratio (width, height) from the VUI, when present.
    pub sample_aspect_ratio: Option<(u16, u16)>,
    /// VUI timing: `(time_scale, 2 * num_units_in_tick)`, i.e. the frame rate as a fraction.
    pub frame_rate: Option<(u32, u64)>,
    /// VUI fixed_frame_rate_flag, when timing is present.
    pub fixed_frame_rate: bool,
}

impl Sps {
    /// Frame rate in frames per second, when the VUI carries timing.
    pub fn fps(&self) -> Option<f64> {
        self.frame_rate.map(|(n, d)| f64::from(n) / d as f64)
    }

    /// Parses an SPS NAL unit (header byte included, emulation prevention not yet removed).
    pub fn parse(nal: &[u8]) -> Result<Self, FlvError> {
        const WHAT: &str = "SPS";
        need(WHAT, nal, 4)?;
        if nal[0] & 0x1F != nal_type::SPS {
            return Err(FlvError::invalid(WHAT, "not an SPS NAL unit"));
        }
        if nal[0] & 0x80 != 0 {
            return Err(FlvError::invalid(WHAT, "forbidden_zero_bit set"));
        }
        let rbsp = nal_to_rbsp(&nal[1..]);
        let mut r = BitReader::new(&rbsp, WHAT);
        let profile_idc = r.read_u8(8)?;
        let constraint_flags = r.read_u8(8)?;
        let level_idc = r.read_u8(8)?;
        let id = r.read_ue_max(31, "seq_parameter_set_id")?;
        let mut chroma_format_idc = 1u8;
        let mut separate_colour_plane = false;
        let mut bit_depth_luma = 8u8;
        let mut bit_depth_chroma = 8u8;
        if matches!(
            profile_idc,
            100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
        ) {
            chroma_format_idc = r.read_ue_max(3, "chroma_format_idc")? as u8;
            if chroma_format_idc == 3 {
                separate_colour_plane = r.read_bit()?;
            }
            bit_depth_luma = 8 + r.read_ue_max(6, "bit_depth_luma_minus8")? as u8;
            bit_depth_chroma = 8 + r.read_ue_max(6, "bit_depth_chroma_minus8")? as u8;
            let _qpprime_y_zero_transform_bypass = r.read_bit()?;
            if r.read_bit()? {
                let lists = if chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..lists {
                    if r.read_bit()? {
                        skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }
        let _log2_max_frame_num_minus4 = r.read_ue_max(12, "log2_max_frame_num_minus4")?;
        let poc_type = r.read_ue_max(2, "pic_order_cnt_type")?;
        if poc_type == 0 {
            r.read_ue_max(12, "log2_max_pic_order_cnt_lsb_minus4")?;
        } else if poc_type == 1 {
            let _delta_pic_order_always_zero = r.read_bit()?;
            r.read_se()?;
            r.read_se()?;
            let n = r.read_ue_max(255, "num_ref_frames_in_pic_order_cnt_cycle")?;
            for _ in 0..n {
                r.read_se()?;
            }
        }
        let _max_num_ref_frames = r.read_ue()?;
        let _gaps_in_frame_num_allowed = r.read_bit()?;
        // 4096 macroblocks = 65536 pixels, far beyond any level's limit.
        let width_mbs = u64::from(r.read_ue_max(4095, "pic_width_in_mbs_minus1")?) + 1;
        let height_map_units =
            u64::from(r.read_ue_max(4095, "pic_height_in_map_units_minus1")?) + 1;
        let frame_mbs_only = r.read_bit()?;
        if !frame_mbs_only {
            let _mb_adaptive_frame_field = r.read_bit()?;
        }
        let _direct_8x8_inference = r.read_bit()?;
        let mut crop = [0u64; 4];
        if r.read_bit()? {
            for c in crop.iter_mut() {
                *c = u64::from(r.read_ue()?);
            }
        }
        let field_factor = if frame_mbs_only { 1 } else { 2 };
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (sub_width, sub_height) = match chroma_array_type {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let (crop_unit_x, crop_unit_y) = if chroma_array_type == 0 {
            (1, field_factor)
        } else {
            (sub_width, sub_height * field_factor)
        };
        let full_width = width_mbs * 16;
        let full_height = height_map_units * 16 * field_factor;
        let crop_x = (crop[0] + crop[1]) * crop_unit_x;
        let crop_y = (crop[2] + crop[3]) * crop_unit_y;
        if crop_x >= full_width || crop_y >= full_height {
            return Err(FlvError::invalid(WHAT, "cropping larger than the picture"));
        }
        // Both fit in u32: at most 4096 * 16 * 2.
        let width = (full_width - crop_x) as u32;
        let height = (full_height - crop_y) as u32;

        let mut sps = Sps {
            profile_idc,
            constraint_flags,
            level_idc,
            id,
            chroma_format_idc,
            bit_depth_luma,
            bit_depth_chroma,
            width,
            height,
            frame_mbs_only,
            sample_aspect_ratio: None,
            frame_rate: None,
            fixed_frame_rate: false,
        };
        // A truncated VUI is common enough in the wild; keep what was read before it.
        if r.read_bit().unwrap_or(false) {
            let _ = parse_vui(&mut r, &mut sps);
        }
        Ok(sps)
    }
}

fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), FlvError> {
    let mut last: i64 = 8;
    let mut next: i64 = 8;
    for _ in 0..size {
        if next != 0 {
            let delta = i64::from(r.read_se()?);
            if !(-128..=127).contains(&delta) {
                return Err(FlvError::invalid(
                    "scaling list",
                    "delta_scale out of range",
                ));
            }
            next = (last + delta + 256).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

fn parse_vui(r: &mut BitReader<'_>, sps: &mut Sps) -> Result<(), FlvError> {
    if r.read_bit()? {
        let idc = r.read_u8(8)?;
        sps.sample_aspect_ratio = match idc {
            255 => Some((r.read_bits(16)? as u16, r.read_bits(16)? as u16)),
            1..=16 => {
                const SAR: [(u16, u16); 16] = [
                    (1, 1),
                    (12, 11),
                    (10, 11),
                    (16, 11),
                    (40, 33),
                    (24, 11),
                    (20, 11),
                    (32, 11),
                    (80, 33),
                    (18, 11),
                    (15, 11),
                    (64, 33),
                    (160, 99),
                    (4, 3),
                    (3, 2),
                    (2, 1),
                ];
                SAR.get(usize::from(idc - 1)).copied()
            }
            _ => None,
        };
    }
    if r.read_bit()? {
        let _overscan_appropriate = r.read_bit()?;
    }
    if r.read_bit()? {
        r.skip_bits(3 + 1)?; // video_format, video_full_range_flag
        if r.read_bit()? {
            r.skip_bits(24)?; // colour primaries, transfer, matrix
        }
    }
    if r.read_bit()? {
        r.read_ue()?;
        r.read_ue()?;
    }
    if r.read_bit()? {
        let num_units_in_tick = r.read_bits(32)?;
        let time_scale = r.read_bits(32)?;
        sps.fixed_frame_rate = r.read_bit()?;
        if num_units_in_tick > 0 && time_scale > 0 {
            sps.frame_rate = Some((time_scale, 2 * u64::from(num_units_in_tick)));
        }
    }
    Ok(())
}

/// Finds the next Annex B start code (`00 00 01`) at or after `from`; returns its position.
fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 3 <= data.len() {
        // Skip ahead quickly: a start code needs data[i + 2] == 1.
        match data[i + 2] {
            1 if data[i] == 0 && data[i + 1] == 0 => return Some(i),
            0 | 1 => i += 1,
            _ => i += 3,
        }
    }
    None
}

/// Iterates over the NAL units of an Annex B byte stream (start codes of 3 or 4 bytes),
/// yielding each unit without its start code and without trailing zero bytes. Bytes before
/// the first start code are ignored.
#[derive(Debug, Clone)]
pub struct AnnexBNalus<'a> {
    data: &'a [u8],
    /// Start of the next NAL unit's payload, or `None` when done.
    next: Option<usize>,
}

impl<'a> AnnexBNalus<'a> {
    /// Iterates over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        AnnexBNalus {
            data,
            next: find_start_code(data, 0).map(|p| p + 3),
        }
    }
}

impl<'a> Iterator for AnnexBNalus<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let start = self.next?;
            let end = match find_start_code(self.data, start) {
                Some(sc) => {
                    self.next = Some(sc + 3);
                    sc
                }
                None => {
                    self.next = None;
                    self.data.len()
                }
            };
            let mut nal = self.data.get(start..end)?;
            while let [rest @ .., 0] = nal {
                nal = rest;
            }
            if !nal.is_empty() {
                return Some(nal);
            }
        }
    }
}

/// The NAL units of an Annex B buffer as zero-copy `Bytes` slices.
pub fn annexb_nalus(data: &Bytes) -> Vec<Bytes> {
    AnnexBNalus::new(data)
        .map(|nal| data.slice_ref(nal))
        .collect()
}

/// Converts an Annex B access unit to AVCC with 4-byte length prefixes, appending to `out`.
/// Returns the number of NAL units written.
pub fn annexb_to_avcc(data: &[u8], out: &mut BytesMut) -> Result<usize, FlvError> {
    let mut n = 0;
    for nal in AnnexBNalus::new(data) {
        let len = u32::try_from(nal.len()).map_err(|_| FlvError::TooLarge {
            what: "NAL unit",
            len: nal.len(),
            max: u32::MAX as usize,
        })?;
        out.reserve(4 + nal.len());
        out.put_u32(len);
        out.put_slice(nal);
        n += 1;
    }
    Ok(n)
}

/// An H.264 access unit taken apart for FLV/RTMP: parameter sets go to the sequence header,
/// the rest (without access unit delimiters) to the coded frame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessUnit {
    /// SPS NAL units found in the access unit.
    pub sps: Vec<Bytes>,
    /// PPS NAL units found in the access unit.
    pub pps: Vec<Bytes>,
    /// The other NAL units (slices, SEI, ...), in order, AUDs dropped.
    pub nalus: Vec<Bytes>,
    /// Whether an IDR slice is present.
    pub keyframe: bool,
}

impl AccessUnit {
    /// Splits an Annex B access unit (e.g. one MPEG-TS PES payload) into zero-copy NAL
    /// unit slices.
    pub fn from_annexb(data: &Bytes) -> Self {
        let mut au = AccessUnit::default();
        for nal in AnnexBNalus::new(data) {
            let nal = data.slice_ref(nal);
            match nal_unit_type(&nal) {
                Some(nal_type::SPS) => au.sps.push(nal),
                Some(nal_type::PPS) => au.pps.push(nal),
                Some(nal_type::AUD) => {}
                Some(t) => {
                    au.keyframe |= t == nal_type::IDR;
                    au.nalus.push(nal);
                }
                None => {}
            }
        }
        au
    }

    /// The decoder configuration record, when the access unit carries an SPS and a PPS.
    pub fn decoder_configuration(&self) -> Option<Result<AvcDecoderConfigurationRecord, FlvError>> {
        (!self.sps.is_empty() && !self.pps.is_empty())
            .then(|| AvcDecoderConfigurationRecord::from_parameter_sets(&self.sps, &self.pps))
    }

    /// The frame NAL units in AVCC form with 4-byte lengths (one copy).
    pub fn to_avcc(&self) -> Result<Bytes, FlvError> {
        let total: usize = self.nalus.iter().map(|n| 4 + n.len()).sum();
        let mut out = BytesMut::with_capacity(total);
        for nal in &self.nalus {
            let len = u32::try_from(nal.len()).map_err(|_| FlvError::TooLarge {
                what: "NAL unit",
                len: nal.len(),
                max: u32::MAX as usize,
            })?;
            out.put_u32(len);
            out.put_slice(nal);
        }
        Ok(out.freeze())
    }
}

/// Iterates over the NAL units of an AVCC (length-prefixed) buffer. A length running past the
/// end yields an error and ends the iteration.
#[derive(Debug, Clone)]
pub struct AvccNalus<'a> {
    data: &'a [u8],
    nal_length_size: usize,
    failed: bool,
}

impl<'a> AvccNalus<'a> {
    /// Iterates over `data` whose length prefixes are `nal_length_size` (1, 2 or 4) bytes.
    pub fn new(data: &'a [u8], nal_length_size: u8) -> Result<Self, FlvError> {
        if !matches!(nal_length_size, 1 | 2 | 4) {
            return Err(FlvError::invalid(
                "NAL length size",
                "must be 1, 2 or 4 bytes",
            ));
        }
        Ok(AvccNalus {
            data,
            nal_length_size: usize::from(nal_length_size),
            failed: false,
        })
    }
}

impl<'a> Iterator for AvccNalus<'a> {
    type Item = Result<&'a [u8], FlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.data.is_empty() {
            return None;
        }
        let n = self.nal_length_size;
        if self.data.len() < n {
            self.failed = true;
            return Some(Err(FlvError::truncated(
                "AVCC length prefix",
                n,
                self.data.len(),
            )));
        }
        let len = self.data[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let rest = &self.data[n..];
        if rest.len() < len {
            self.failed = true;
            return Some(Err(FlvError::truncated("AVCC NAL unit", len, rest.len())));
        }
        let (nal, tail) = rest.split_at(len);
        self.data = tail;
        Some(Ok(nal))
    }
}

/// Converts an AVCC access unit to Annex B with 4-byte start codes, appending to `out`.
/// Returns the number of NAL units written.
pub fn avcc_to_annexb(
    data: &[u8],
    nal_length_size: u8,
    out: &mut BytesMut,
) -> Result<usize, FlvError> {
    let mut n = 0;
    for nal in AvccNalus::new(data, nal_length_size)? {
        let nal = nal?;
        out.reserve(4 + nal.len());
        out.put_slice(&[0, 0, 0, 1]);
        out.put_slice(nal);
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SPS of a 1280x720 30 fps High profile stream from x264 (`ffmpeg -c:v libx264`).
    const SPS_720P: &[u8] = &[
        0x67, 0x64, 0x00, 0x1F, 0xAC, 0xD9, 0x40, 0x50, 0x05, 0xBB, 0x01, 0x10, 0x00, 0x00, 0x03,
        0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xC0, 0xF1, 0x83, 0x19, 0x60,
    ];

    #[test]
    fn sps_720p_high() {
        let sps = Sps::parse(SPS_720P).unwrap();
        assert_eq!(sps.profile_idc, 100);
        assert_eq!(sps.level_idc, 31);
        assert_eq!((sps.width, sps.height), (1280, 720));
        assert_eq!(sps.chroma_format_idc, 1);
        assert_eq!(sps.bit_depth_luma, 8);
        assert!(sps.frame_mbs_only);
        assert_eq!(sps.sample_aspect_ratio, Some((1, 1)));
        assert_eq!(sps.frame_rate, Some((60, 2)));
        assert_eq!(sps.fps(), Some(30.0));
    }

    /// Baseline 1920x1080 25 fps from x264: 1088 coded lines, cropped to 1080.
    const SPS_1080P_BASELINE: &[u8] = &[
        0x67, 0x42, 0xC0, 0x28, 0xD9, 0x00, 0x78, 0x02, 0x27, 0xE5, 0xC0, 0x44, 0x00, 0x00, 0x03,
        0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xC8, 0x3C, 0x60, 0xC9, 0x20,
    ];

    #[test]
    fn sps_1080p_cropping() {
        let sps = Sps::parse(SPS_1080P_BASELINE).unwrap();
        assert_eq!(sps.profile_idc, 66);
        assert_eq!(sps.level_idc, 40);
        assert_eq!((sps.width, sps.height), (1920, 1080));
        assert_eq!(sps.fps(), Some(25.0));
    }

    /// Main profile 320x240 25 fps from x264.
    const SPS_240P_MAIN: &[u8] = &[
        0x67, 0x4D, 0x40, 0x0D, 0xEC, 0xA0, 0xA0, 0xFD, 0x80, 0x88, 0x00, 0x00, 0x03, 0x00, 0x08,
        0x00, 0x00, 0x03, 0x01, 0x90, 0x78, 0xA1, 0x4C, 0xB0,
    ];

    #[test]
    fn sps_240p_main() {
        let sps = Sps::parse(SPS_240P_MAIN).unwrap();
        assert_eq!(sps.profile_idc, 77);
        assert_eq!(sps.level_idc, 13);
        assert_eq!((sps.width, sps.height), (320, 240));
        assert_eq!(sps.frame_rate, Some((50, 2)));
    }

    #[test]
    fn sps_rejects_garbage() {
        assert!(Sps::parse(&[]).is_err());
        assert!(Sps::parse(&[0x68, 0x42, 0, 0x1E]).is_err());
        assert!(Sps::parse(&[0x67, 0x42, 0, 0x1E]).is_err());
        assert!(Sps::parse(&[0x67, 0x64, 0, 0x1E, 0, 0, 0, 0, 0, 0, 0]).is_err());
        // Truncated before the VUI flag: an error. Inside the VUI: the size is still known.
        for n in 0..10 {
            assert!(Sps::parse(&SPS_720P[..n]).is_err(), "prefix {n}");
        }
        for n in 10..SPS_720P.len() {
            let sps = Sps::parse(&SPS_720P[..n]).unwrap();
            assert_eq!((sps.width, sps.height), (1280, 720));
        }
    }

    const PPS: &[u8] = &[0x68, 0xEB, 0xE3, 0xCB, 0x22, 0xC0];

    #[test]
    fn record_round_trip() {
        let sps = Bytes::from_static(SPS_720P);
        let pps = Bytes::from_static(PPS);
        let rec = AvcDecoderConfigurationRecord::from_parameter_sets(
            std::slice::from_ref(&sps),
            std::slice::from_ref(&pps),
        )
        .unwrap();
        assert_eq!(rec.profile_indication, 100);
        assert_eq!(rec.level_indication, 31);
        assert_eq!(rec.nal_length_size, 4);
        let ext = rec.high_profile_ext.as_ref().unwrap();
        assert_eq!(ext.chroma_format, 1);
        let enc = rec.encode().unwrap();
        assert_eq!(&enc[..6], &[1, 100, 0, 31, 0xFF, 0xE1]);
        let back = AvcDecoderConfigurationRecord::parse(enc.clone()).unwrap();
        assert_eq!(back, rec);
        assert_eq!(back.sps[0], sps);
        assert_eq!(back.pps[0], pps);
        // Zero-copy: the SPS slice points into the encoded buffer.
        assert_eq!(back.sps[0].as_ptr(), enc[8..].as_ptr());
        assert_eq!(back.parse_sps().unwrap().width, 1280);
    }

    #[test]
    fn record_without_high_ext_and_errors() {
        let mut d = vec![1, 66, 0xC0, 30, 0xFF, 0xE1];
        d.extend_from_slice(&(SPS_1080P_BASELINE.len() as u16).to_be_bytes());
        d.extend_from_slice(SPS_1080P_BASELINE);
        d.push(1);
        d.extend_from_slice(&(PPS.len() as u16).to_be_bytes());
        d.extend_from_slice(PPS);
        let rec = AvcDecoderConfigurationRecord::parse(Bytes::from(d.clone())).unwrap();
        assert!(rec.high_profile_ext.is_none());
        assert_eq!(&rec.encode().unwrap()[..], &d[..]);
        for n in 0..d.len() {
            assert!(AvcDecoderConfigurationRecord::parse(Bytes::copy_from_slice(&d[..n])).is_err());
        }
        let mut bad = d.clone();
        bad[0] = 2;
        assert!(AvcDecoderConfigurationRecord::parse(Bytes::from(bad)).is_err());
        assert!(AvcDecoderConfigurationRecord::from_parameter_sets(&[], &[]).is_err());
        assert!(AvcDecoderConfigurationRecord::from_parameter_sets(
            &[Bytes::from_static(PPS)],
            &[Bytes::from_static(PPS)]
        )
        .is_err());
    }

    #[test]
    fn annexb_avcc_round_trip() {
        let annexb: &[u8] = &[
            0, 0, 0, 1, 0x09, 0xF0, // AUD, 4-byte start code
            0, 0, 1, 0x67, 0x42, 0x01, // SPS, 3-byte start code
            0, 0, 1, 0x68, 0xCE, 0, 0, // PPS with trailing zeros
            0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00, 0x03, 0x01, // IDR with emulation prevention
        ];
        let nals: Vec<&[u8]> = AnnexBNalus::new(annexb).collect();
        assert_eq!(
            nals,
            vec![
                &[0x09, 0xF0][..],
                &[0x67, 0x42, 0x01][..],
                &[0x68, 0xCE][..],
                &[0x65, 0x88, 0x84, 0x00, 0x03, 0x01][..]
            ]
        );
        let mut avcc = BytesMut::new();
        assert_eq!(annexb_to_avcc(annexb, &mut avcc).unwrap(), 4);
        assert_eq!(&avcc[..6], &[0, 0, 0, 2, 0x09, 0xF0]);
        let mut back = BytesMut::new();
        assert_eq!(avcc_to_annexb(&avcc, 4, &mut back).unwrap(), 4);
        let renals: Vec<&[u8]> = AnnexBNalus::new(&back).collect();
        assert_eq!(renals, nals);
        let owned = Bytes::copy_from_slice(annexb);
        let sliced = annexb_nalus(&owned);
        assert_eq!(sliced.len(), 4);
        assert_eq!(nal_unit_type(&sliced[3]), Some(nal_type::IDR));
    }

    #[test]
    fn access_unit_split_for_flv() {
        let mut au = vec![0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1];
        au.extend_from_slice(SPS_720P);
        au.extend_from_slice(&[0, 0, 0, 1]);
        au.extend_from_slice(PPS);
        au.extend_from_slice(&[0, 0, 1, 0x06, 0x05, 0x01, 0x80]);
        au.extend_from_slice(&[0, 0, 1, 0x65, 0x88, 0x84, 0x21]);
        let au = AccessUnit::from_annexb(&Bytes::from(au));
        assert!(au.keyframe);
        assert_eq!(au.sps, vec![Bytes::from_static(SPS_720P)]);
        assert_eq!(au.pps, vec![Bytes::from_static(PPS)]);
        assert_eq!(au.nalus.len(), 2, "SEI and IDR; AUD dropped");
        let rec = au.decoder_configuration().unwrap().unwrap();
        assert_eq!(rec.parse_sps().unwrap().width, 1280);
        assert_eq!(
            &au.to_avcc().unwrap()[..],
            &[0, 0, 0, 4, 0x06, 0x05, 0x01, 0x80, 0, 0, 0, 4, 0x65, 0x88, 0x84, 0x21]
        );
        let inter = AccessUnit::from_annexb(&Bytes::from_static(&[0, 0, 1, 0x41, 0x9A]));
        assert!(!inter.keyframe);
        assert!(inter.decoder_configuration().is_none());
    }

    #[test]
    fn avcc_length_sizes_and_truncation() {
        let two = [0, 2, 0x41, 0x42, 0, 1, 0x43];
        let nals: Vec<_> = AvccNalus::new(&two, 2)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(nals, vec![&[0x41, 0x42][..], &[0x43][..]]);
        let bad = [0, 0, 0, 9, 1, 2];
        let mut out = BytesMut::new();
        assert!(avcc_to_annexb(&bad, 4, &mut out).is_err());
        assert!(AvccNalus::new(&bad, 3).is_err());
        let mut it = AvccNalus::new(&[0, 0, 0], 4).unwrap();
        assert!(matches!(it.next(), Some(Err(_))));
        assert!(it.next().is_none());
    }

    #[test]
    fn annexb_without_start_code_is_empty() {
        assert_eq!(AnnexBNalus::new(&[1, 2, 3, 4]).count(), 0);
        assert_eq!(AnnexBNalus::new(&[0, 0, 1]).count(), 0);
        assert_eq!(AnnexBNalus::new(&[0, 0, 0, 0, 0, 1, 5]).count(), 1);
    }
}
