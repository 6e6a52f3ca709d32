//! The properties the fuzz targets check, shared with `tests/fuzz_corpus.rs`,
//! which replays every committed corpus and regression input through them in
//! the normal test suite. A failed check panics.

#![allow(dead_code)] // each includer uses some of the checks

use scopecam::picture::decode::{Decoder, MAX_SCOPE_HEIGHT, MAX_SCOPE_WIDTH};
use scopecam::picture::{Framer, Geometry, Placement, Rotation};
use scopecam::scope::button::ButtonTracker;
use scopecam::scope::button::MAX_PRESSES_PER_POLL;
use scopecam::scope::protocol::ButtonAnswer;
use scopecam::scope::protocol::Fragment;
use scopecam::scope::reassembly::{Reassembler, ReassemblyLimits};
use std::time::{Duration, Instant};

/// Small limits, so the fuzzer reaches them with short inputs.
fn limits() -> ReassemblyLimits {
    ReassemblyLimits {
        max_frame_bytes: 64 * 1024,
        max_fragments: 64,
        frame_timeout: Duration::from_millis(200),
        max_frames_in_flight: 3,
    }
}

/// Sequences of datagrams, as they would arrive on the video port, through
/// fragment parsing and reassembly. Input layout, repeated: one byte of
/// clock advance (in ms), two bytes of datagram length (little endian), then
/// that many bytes of datagram.
///
/// What must hold whatever arrives: no panic; every delivered frame is a
/// whole JPEG that walks from FF D8 to its end marker, its last two bytes,
/// and is no larger than the limit; frames in flight and
/// the bytes they hold stay within the limits.
pub fn reassembly(data: &[u8]) {
    let limits = limits();
    let mut reassembler = Reassembler::new(limits.clone());
    let mut now = Instant::now();
    let mut rest = data;
    while let [advance_ms, len_lo, len_hi, tail @ ..] = rest {
        now += Duration::from_millis(u64::from(*advance_ms));
        let len = usize::from(u16::from_le_bytes([*len_lo, *len_hi])).min(tail.len());
        let (datagram, after) = tail.split_at(len);
        rest = after;
        let Ok(fragment) = Fragment::parse(datagram) else {
            continue;
        };
        if let Some(frame) = reassembler.push(&fragment, now) {
            assert_eq!(
                scopecam::jpeg::end_of_image(&frame.jpeg),
                Ok(frame.jpeg.len()),
                "a frame that does not walk as a JPEG to its last byte"
            );
            assert!(frame.jpeg.len() <= limits.max_frame_bytes);
            reassembler.recycle(frame.jpeg);
        }
        assert!(reassembler.in_flight() <= limits.max_frames_in_flight);
        assert!(
            reassembler.buffered_bytes() <= limits.max_frames_in_flight * limits.max_frame_bytes
        );
    }
}

/// Bytes of one control-port datagram in the button input.
const DATAGRAM: usize = 20;

/// RETCMD answers (and anything else arriving on the control port) through
/// parsing and the button tracker, interleaved with polls. Input layout,
/// repeated: one op byte (bit 0: send a poll first; bit 1: the link was
/// lost), then a 20-byte datagram.
///
/// What must hold: no panic; no answer ever reports more than
/// MAX_PRESSES_PER_POLL presses; the running total is the sum reported; an
/// answer repeated verbatim never counts twice.
pub fn button(data: &[u8]) {
    let mut tracker = ButtonTracker::new();
    let mut reported = 0u64;
    for chunk in data.chunks(DATAGRAM + 1) {
        let (op, datagram) = chunk.split_first().unwrap_or((&0, &[]));
        if op & 1 != 0 {
            tracker.next_request();
        }
        if op & 2 != 0 {
            tracker.link_lost();
        }
        let Ok(answer) = ButtonAnswer::parse(datagram) else {
            continue;
        };
        let presses = tracker.on_answer(answer);
        assert!(presses <= u32::from(MAX_PRESSES_PER_POLL));
        reported += u64::from(presses);
        assert_eq!(tracker.on_answer(answer), 0, "a duplicate answer counted");
    }
    assert_eq!(tracker.presses_total(), reported);
}

/// JPEG decode and conversion as the frame path runs them: the bare decoder
/// to YUYV and to planes (the y4m output), and the framer (rotation, mirror,
/// scaling, letterbox) into a fixed camera size. The first byte picks the
/// placement; the rest is the JPEG. Seeded with real scope-like frames
/// (fuzz/corpus/decode).
///
/// What must hold: no panic escapes (the decoder contains zune-jpeg's own);
/// a decoded frame has an even width, at most MAX_SCOPE_WIDTH x MAX_SCOPE_HEIGHT, and exactly
/// width * 2 * height bytes; the planes decode exactly when the YUYV picture
/// does and hold its samples; the RGB decode (the camera's way for turned or
/// scaled pictures) accepts exactly the frames the plane path accepts; a
/// framed picture always has the camera's size.
pub fn decode(data: &[u8]) {
    let Some((&choice, jpeg)) = data.split_first() else {
        return;
    };
    let mut decoder = Decoder::new();
    let yuyv = decoder.decode(jpeg).ok().cloned();
    if let Some(frame) = &yuyv {
        assert_eq!(frame.width % 2, 0);
        assert!(frame.width <= MAX_SCOPE_WIDTH && frame.height <= MAX_SCOPE_HEIGHT);
        assert_eq!(
            frame.data.len(),
            frame.width as usize * 2 * frame.height as usize
        );
    }
    match (decoder.decode_planar(jpeg), &yuyv) {
        (Ok(planar), Some(frame)) => {
            assert_eq!((planar.width, planar.height), (frame.width, frame.height));
            let (y, u, v) = planar.planes();
            assert!(y.iter().copied().eq(frame.data.iter().step_by(2).copied()));
            assert!(
                u.iter()
                    .copied()
                    .eq(frame.data.iter().skip(1).step_by(4).copied())
            );
            assert!(
                v.iter()
                    .copied()
                    .eq(frame.data.iter().skip(3).step_by(4).copied())
            );
        }
        (Err(_), None) => {}
        (planar, yuyv) => panic!(
            "planes decoded: {}, YUYV decoded: {}",
            planar.is_ok(),
            yuyv.is_some()
        ),
    }
    assert_eq!(
        decoder.decode_rgb(jpeg).is_ok(),
        yuyv.is_some(),
        "the RGB and the plane decode disagree on this frame"
    );
    let output = Geometry {
        width: 64 + 2 * u32::from(choice & 0x1F),
        height: 48,
    };
    let mut framer = Framer::new(Placement {
        rotation: Rotation::from_degrees(u16::from(choice >> 6) * 90).unwrap_or(Rotation::None),
        mirror: choice & 0x20 != 0,
        output,
    });
    if let Ok(frame) = framer.frame_jpeg(&mut decoder, jpeg) {
        assert_eq!((frame.width, frame.height), (output.width, output.height));
        assert_eq!(
            frame.data.len(),
            output.width as usize * 2 * output.height as usize
        );
    }
}
