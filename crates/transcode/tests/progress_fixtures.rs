//! The stderr parser on output captured from the real FFmpeg (see `fixtures/README.md`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use lunora_transcode::{classify_error, Event, Fatal, Progress, ProgressParser};

fn events(fixture: &str) -> Vec<Event> {
    // The crate's directory as `cargo test` gives it when the test runs, so a test binary built
    // in another checkout of the same tree still finds its fixtures.
    let dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    let path = format!("{dir}/tests/fixtures/{fixture}");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut parser = ProgressParser::new();
    text.lines().flat_map(|l| parser.push_line(l)).collect()
}

fn progress(events: &[Event]) -> Vec<&Progress> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Progress(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn errors(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Error(m) => Some(m.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn clean_run_reports_progress_then_ends() {
    let events = events("progress_x264_320x240.txt");
    let reports = progress(&events);
    assert_eq!(reports.len(), 5, "{events:#?}");
    assert!(errors(&events).is_empty());
    assert_eq!(events.last(), Some(&Event::Ended));

    let first = reports[0];
    assert_eq!(first.frame, 1);
    assert_eq!(first.bitrate_kbps, Some(28.2));
    assert_eq!(first.out_time_us, Some(106_000));
    assert_eq!(first.speed, Some(0.662));

    // Frames, time and bytes only grow.
    for pair in reports.windows(2) {
        assert!(pair[1].frame > pair[0].frame);
        assert!(pair[1].out_time_us > pair[0].out_time_us);
        assert!(pair[1].total_size > pair[0].total_size);
    }
    let last = reports[reports.len() - 1];
    // 2.08 s of 25 fps input at 30 fps out.
    assert!((60..=63).contains(&last.frame), "{last:?}");
    // The fps filter converts 25 -> 30 fps, so FFmpeg's own sync neither drops nor dups.
    assert_eq!((last.dropped_frames, last.dup_frames), (0, 0));
    assert!(
        last.speed.is_some_and(|s| s > 0.5 && s < 2.0),
        "-re: {last:?}"
    );
    let kbps = last.bitrate_kbps.unwrap();
    assert!((500.0..1500.0).contains(&kbps), "{kbps}");
}

#[test]
fn unknown_encoder_is_fatal() {
    let events = events("unknown_encoder.txt");
    assert_eq!(
        events,
        [Event::Error(
            "Unknown encoder 'libx264_lunora_missing'".into()
        )]
    );
    assert_eq!(
        classify_error(errors(&events)[0]),
        Some(Fatal::MissingEncoder("libx264_lunora_missing".into()))
    );
}

#[test]
fn hevc_in_flv_is_fatal_on_ffmpeg_before_6_1() {
    let events = events("hevc_in_flv.txt");
    assert!(progress(&events).is_empty());
    let errors = errors(&events);
    assert_eq!(errors[0], "flv: Video codec hevc not compatible with flv");
    let fatal: Vec<_> = errors.iter().filter_map(|e| classify_error(e)).collect();
    assert_eq!(fatal, [Fatal::CodecNotInFlv("H.265".into())]);
    // x265's own warning lines are recognised, its info lines ignored.
    assert!(events.contains(&Event::Warning(
        "x265: Source height < 720p; disabling lookahead-slices".into()
    )));
}

#[test]
fn corrupt_input_is_an_error_but_not_fatal() {
    let events = events("corrupt_truncated_input.txt");
    let errors = errors(&events);
    assert!(
        errors.contains(&"h264: Invalid NAL unit size (615 > 521)."),
        "{errors:?}"
    );
    assert!(errors
        .contains(&"Error while decoding stream #0:0: Invalid data found when processing input"));
    assert!(errors.iter().all(|e| classify_error(e).is_none()));
    let reports = progress(&events);
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].bitrate_kbps, None); // bitrate=N/A
    assert_eq!(reports[0].speed, Some(0.0)); // speed=   0x
    assert_eq!(events.last(), Some(&Event::Ended));
}

#[test]
fn bad_option_is_fatal() {
    let events = events("bad_option.txt");
    let errors = errors(&events);
    assert_eq!(
        errors,
        [
            "Unrecognized option 'bogus_option'.",
            "Error splitting the argument list: Option not found"
        ]
    );
    assert!(matches!(
        classify_error(errors[0]),
        Some(Fatal::BadArguments(_))
    ));
}

#[test]
fn garbage_input_is_not_fatal() {
    let events = events("garbage_input.txt");
    assert_eq!(
        events,
        [Event::Error(
            "pipe:0: could not find codec parameters".into()
        )]
    );
    assert_eq!(
        classify_error("pipe:0: could not find codec parameters"),
        None
    );
}
