use super::*;
use crate::scope::protocol::FragmentHeader;
use crate::scope::protocol::video::fragment_frame;
use proptest::prelude::*;
use std::collections::HashMap;

const MS: Duration = Duration::from_millis(1);

/// A JPEG as the walker sees one: FF D8, a scan header, `body_len` pseudo-random
/// bytes derived from `seed` as entropy-coded data (no FF in them), FF D9.
fn fake_jpeg(body_len: usize, seed: u8) -> Vec<u8> {
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02];
    jpeg.extend((0..body_len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed).min(0xFE)));
    jpeg.extend_from_slice(&[0xFF, 0xD9]);
    jpeg
}

/// A JPEG whose scan holds `data`, FF bytes stuffed as an encoder would.
fn jpeg_with_scan(data: &[u8]) -> Vec<u8> {
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02];
    for &byte in data {
        jpeg.push(byte);
        if byte == 0xFF {
            jpeg.push(0);
        }
    }
    jpeg.extend_from_slice(&[0xFF, 0xD9]);
    jpeg
}

/// A hand-made datagram, for headers `fragment_frame` would never produce.
fn datagram(
    kind: FragmentKind,
    frame_id: u8,
    frame_size: u32,
    index: u16,
    payload: &[u8],
) -> Vec<u8> {
    Fragment {
        header: FragmentHeader {
            kind,
            format: FORMAT_MJPEG,
            frame_id,
            frame_size,
            index,
            payload_len: payload.len() as u16,
        },
        payload,
    }
    .to_bytes()
}

fn push(r: &mut Reassembler, datagram: &[u8], now: Instant) -> Option<CompleteFrame> {
    let fragment = Fragment::parse(datagram).expect("test datagrams are well-formed");
    r.push(&fragment, now)
}

fn push_all<'a>(
    r: &mut Reassembler,
    datagrams: impl IntoIterator<Item = &'a Vec<u8>>,
    now: Instant,
) -> Vec<CompleteFrame> {
    datagrams
        .into_iter()
        .filter_map(|d| push(r, d, now))
        .collect()
}

fn reassembler() -> Reassembler {
    Reassembler::new(ReassemblyLimits::default())
}

/// Capacity of every buffer the reassembler holds, in flight or spare.
fn held_capacity(r: &Reassembler) -> usize {
    r.in_flight.iter().map(|f| f.data.capacity()).sum::<usize>()
        + r.spare_buffers.iter().map(Vec::capacity).sum::<usize>()
}

#[test]
fn in_order_frame_is_delivered_once() {
    let mut r = reassembler();
    let now = Instant::now();
    let jpeg = fake_jpeg(5000, 1);
    let frames = push_all(&mut r, &fragment_frame(&jpeg, 7, 1460), now);
    assert_eq!(frames, vec![CompleteFrame { frame_id: 7, jpeg }]);
    assert_eq!(r.frames_completed(), 1);
    assert_eq!(r.in_flight(), 0);
    assert_eq!(r.drops().total(), 0);
}

#[test]
fn single_fragment_frame_flagged_last_index_zero_completes() {
    let mut r = reassembler();
    let jpeg = fake_jpeg(10, 2);
    let frags = fragment_frame(&jpeg, 0, 1460);
    assert_eq!(frags.len(), 1);
    assert_eq!(push_all(&mut r, &frags, Instant::now())[0].jpeg, jpeg);
}

#[test]
fn frame_without_last_flag_completes_when_contiguous_and_byte_exact() {
    let mut r = reassembler();
    let now = Instant::now();
    let jpeg = fake_jpeg(30, 12);
    let size = jpeg.len() as u32;
    // One fragment flagged "first" carrying the whole frame.
    let frames = push_all(
        &mut r,
        &[datagram(FragmentKind::First, 1, size, 0, &jpeg)],
        now,
    );
    assert_eq!(frames[0].jpeg, jpeg);
    // Two fragments, neither flagged "last", arriving in reverse.
    let two = [
        datagram(FragmentKind::Middle, 2, size, 1, &jpeg[10..]),
        datagram(FragmentKind::First, 2, size, 0, &jpeg[..10]),
    ];
    assert_eq!(push_all(&mut r, &two, now)[0].jpeg, jpeg);
    // Full size but a gap at index 1: keep waiting.
    let gap = [
        datagram(FragmentKind::First, 3, size, 0, &jpeg[..10]),
        datagram(FragmentKind::Middle, 3, size, 2, &jpeg[10..]),
    ];
    assert!(push_all(&mut r, &gap, now).is_empty());
    assert_eq!(r.in_flight(), 1);
}

#[test]
fn reset_stream_forgets_history_but_keeps_counters() {
    let mut r = reassembler();
    let now = Instant::now();
    let frags = fragment_frame(&fake_jpeg(300, 1), 40, 100);
    assert_eq!(push_all(&mut r, &frags, now).len(), 1);
    push(&mut r, &fragment_frame(&fake_jpeg(300, 2), 41, 100)[0], now);
    r.reset_stream();
    assert_eq!(r.in_flight(), 0);
    assert_eq!(r.drops().get(DropReason::Incomplete), 1);
    // A restarted scope reusing ids right away is accepted.
    assert_eq!(push_all(&mut r, &frags, now).len(), 1);
    assert_eq!(r.frames_completed(), 2);
}

#[test]
fn reordered_fragments_are_assembled_in_index_order() {
    let mut r = reassembler();
    let jpeg = fake_jpeg(1000, 3);
    let mut frags = fragment_frame(&jpeg, 9, 100);
    frags.reverse();
    frags.swap(2, 5);
    let frames = push_all(&mut r, &frags, Instant::now());
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].jpeg, jpeg);
}

#[test]
fn duplicates_are_ignored_before_and_after_completion_or_repeat_the_frame_exactly() {
    let mut r = reassembler();
    let now = Instant::now();
    let jpeg = fake_jpeg(300, 4);
    let frags = fragment_frame(&jpeg, 1, 100);
    let doubled: Vec<Vec<u8>> = frags.iter().flat_map(|f| [f.clone(), f.clone()]).collect();
    let frames = push_all(&mut r, &doubled, now);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].jpeg, jpeg);
    // Late repeats of fragments other than the start open nothing.
    assert!(push_all(&mut r, &frags[1..], now + 10 * MS).is_empty());
    assert_eq!(r.in_flight(), 0);
    // A repeated start opens a repeat, which takes only the frame's own
    // fragments: it expires uncounted, or becomes an exact copy.
    assert!(push_all(&mut r, &frags[..2], now + 20 * MS).is_empty());
    assert_eq!(r.in_flight(), 1);
    r.expire(now + 2000 * MS);
    assert_eq!(r.in_flight(), 0);
    let again = push_all(&mut r, &frags, now + 30 * MS);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].jpeg, jpeg);
    assert_eq!(r.drops().total(), 0);
}

#[test]
fn late_last_fragment_completes_frame_after_next_one_started() {
    let mut r = reassembler();
    let now = Instant::now();
    let a = fake_jpeg(500, 5);
    let b = fake_jpeg(500, 6);
    let fa = fragment_frame(&a, 10, 200);
    let fb = fragment_frame(&b, 11, 200);
    assert!(push(&mut r, &fa[0], now).is_none());
    assert!(push(&mut r, &fa[1], now).is_none());
    assert!(push(&mut r, &fb[0], now).is_none());
    assert_eq!(r.in_flight(), 2);
    assert_eq!(push(&mut r, &fa[2], now).map(|f| f.jpeg), Some(a));
    assert_eq!(push_all(&mut r, &fb[1..], now)[0].jpeg, b);
    assert_eq!(r.drops().total(), 0);
}

#[test]
fn interleaved_frames_both_complete() {
    let mut r = reassembler();
    let now = Instant::now();
    let a = fake_jpeg(700, 7);
    let b = fake_jpeg(900, 8);
    let fa = fragment_frame(&a, 20, 100);
    let fb = fragment_frame(&b, 21, 100);
    let mut mixed = Vec::new();
    for (i, b_fragment) in fb.iter().enumerate() {
        if let Some(a_fragment) = fa.get(i) {
            mixed.push(a_fragment.clone());
        }
        mixed.push(b_fragment.clone());
    }
    let frames = push_all(&mut r, &mixed, now);
    let ids: Vec<u8> = frames.iter().map(|f| f.frame_id).collect();
    assert_eq!(ids, vec![20, 21]);
    assert_eq!(frames[0].jpeg, a);
    assert_eq!(frames[1].jpeg, b);
}

#[test]
fn frame_missing_a_fragment_expires_as_incomplete() {
    let mut r = reassembler();
    let start = Instant::now();
    let frags = fragment_frame(&fake_jpeg(500, 9), 3, 100);
    let without_one: Vec<Vec<u8>> = frags
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, f)| f.clone())
        .collect();
    assert!(push_all(&mut r, &without_one, start).is_empty());
    r.expire(start + 999 * MS);
    assert_eq!(r.in_flight(), 1);
    r.expire(start + 1000 * MS);
    assert_eq!(r.in_flight(), 0);
    assert_eq!(r.drops().get(DropReason::Incomplete), 1);
    // The missing fragment turning up late is ignored, not a new frame.
    assert!(push(&mut r, &frags[2], start + 1001 * MS).is_none());
    assert_eq!(r.in_flight(), 0);
    assert_eq!(r.drops().total(), 1);
}

#[test]
fn bytes_short_of_announced_size_is_size_mismatch() {
    let mut r = reassembler();
    let now = Instant::now();
    let jpeg = fake_jpeg(20, 10);
    let size = jpeg.len() as u32 + 5;
    assert!(
        push(
            &mut r,
            &datagram(FragmentKind::First, 1, size, 0, &jpeg[..10]),
            now
        )
        .is_none()
    );
    assert!(
        push(
            &mut r,
            &datagram(FragmentKind::Last, 1, size, 1, &jpeg[10..]),
            now
        )
        .is_none()
    );
    assert_eq!(r.drops().get(DropReason::SizeMismatch), 1);
    assert_eq!(r.in_flight(), 0);
}

#[test]
fn bytes_beyond_announced_size_is_size_mismatch() {
    let mut r = reassembler();
    let now = Instant::now();
    let jpeg = fake_jpeg(20, 11);
    let size = jpeg.len() as u32 - 3;
    assert!(
        push(
            &mut r,
            &datagram(FragmentKind::First, 1, size, 0, &jpeg[..10]),
            now
        )
        .is_none()
    );
    assert!(
        push(
            &mut r,
            &datagram(FragmentKind::Last, 1, size, 1, &jpeg[10..]),
            now
        )
        .is_none()
    );
    assert_eq!(r.drops().get(DropReason::SizeMismatch), 1);
    // A single fragment bigger than the whole announced frame.
    assert!(push(&mut r, &datagram(FragmentKind::Last, 2, 4, 0, &jpeg), now).is_none());
    assert_eq!(r.drops().get(DropReason::SizeMismatch), 2);
    assert_eq!(r.in_flight(), 0);
}

#[test]
fn same_id_with_another_size_is_another_frame() {
    let mut r = reassembler();
    let now = Instant::now();
    let a = fake_jpeg(300, 1);
    let b = fake_jpeg(301, 2);
    let (fa, fb) = (fragment_frame(&a, 1, 100), fragment_frame(&b, 1, 100));
    push(&mut r, &fa[0], now);
    push(&mut r, &fb[0], now);
    assert_eq!(r.in_flight(), 2);
    assert_eq!(push_all(&mut r, &fa[1..], now)[0].jpeg, a);
    assert_eq!(push_all(&mut r, &fb[1..], now)[0].jpeg, b);
    assert_eq!(r.drops().total(), 0);
}

#[test]
fn two_different_last_indices_are_inconsistent() {
    let mut r = reassembler();
    let now = Instant::now();
    push(
        &mut r,
        &datagram(FragmentKind::Last, 1, 100, 3, &[1; 10]),
        now,
    );
    push(
        &mut r,
        &datagram(FragmentKind::Last, 1, 100, 4, &[1; 10]),
        now,
    );
    assert_eq!(r.drops().get(DropReason::InconsistentHeader), 1);
}

#[test]
fn index_beyond_last_is_inconsistent_whichever_arrives_first() {
    let mut r = reassembler();
    let now = Instant::now();
    push(
        &mut r,
        &datagram(FragmentKind::Last, 1, 100, 2, &[1; 10]),
        now,
    );
    push(
        &mut r,
        &datagram(FragmentKind::Middle, 1, 100, 3, &[1; 10]),
        now,
    );
    push(
        &mut r,
        &datagram(FragmentKind::Middle, 2, 100, 5, &[1; 10]),
        now,
    );
    push(
        &mut r,
        &datagram(FragmentKind::Last, 2, 100, 4, &[1; 10]),
        now,
    );
    assert_eq!(r.drops().get(DropReason::InconsistentHeader), 2);
    assert_eq!(r.in_flight(), 0);
}

#[test]
fn index_at_max_fragments_is_inconsistent() {
    let mut r = Reassembler::new(ReassemblyLimits {
        max_fragments: 8,
        ..ReassemblyLimits::default()
    });
    let now = Instant::now();
    push(
        &mut r,
        &datagram(FragmentKind::Middle, 1, 100, 8, &[1; 10]),
        now,
    );
    assert_eq!(r.drops().get(DropReason::InconsistentHeader), 1);
    assert_eq!(r.in_flight(), 0);
    // Also when the frame is already in flight.
    push(
        &mut r,
        &datagram(FragmentKind::First, 2, 100, 0, &[1; 10]),
        now,
    );
    push(
        &mut r,
        &datagram(FragmentKind::Middle, 2, 100, 9, &[1; 10]),
        now,
    );
    assert_eq!(r.drops().get(DropReason::InconsistentHeader), 2);
    // Rejected on its own: the frame in flight is left alone.
    assert_eq!(r.in_flight(), 1);
}

#[test]
fn hostile_size_announcement_allocates_nothing() {
    let mut r = reassembler();
    let now = Instant::now();
    for (id, size) in [(1, u32::MAX), (2, 0), (3, (4 << 20) + 1)] {
        push(
            &mut r,
            &datagram(FragmentKind::First, id, size, 0, &[0xFF, 0xD8, 1, 2]),
            now,
        );
        // Further fragments of the same frame are not counted again.
        push(
            &mut r,
            &datagram(FragmentKind::Middle, id, size, 1, &[3, 4]),
            now,
        );
    }
    assert_eq!(r.drops().get(DropReason::Oversized), 3);
    assert_eq!(r.drops().total(), 3);
    assert_eq!(r.in_flight(), 0);
    assert_eq!(held_capacity(&r), 0);
}

#[test]
fn large_announcement_allocates_only_what_arrives() {
    let mut r = reassembler();
    let now = Instant::now();
    let max = ReassemblyLimits::default().max_frame_bytes as u32;
    push(
        &mut r,
        &datagram(FragmentKind::First, 1, max, 0, &[7; 1000]),
        now,
    );
    push(
        &mut r,
        &datagram(FragmentKind::Middle, 1, max, 1, &[7; 1000]),
        now,
    );
    assert_eq!(r.in_flight(), 1);
    assert_eq!(r.buffered_bytes(), 2000);
    assert!(held_capacity(&r) <= 4000, "held {}", held_capacity(&r));
}

#[test]
fn oldest_frame_is_superseded_when_too_many_are_in_flight() {
    let mut r = reassembler();
    let now = Instant::now();
    let frags: Vec<Vec<Vec<u8>>> = (0..4u8)
        .map(|id| fragment_frame(&fake_jpeg(300, id), 50 + id, 100))
        .collect();
    for f in &frags {
        push(&mut r, &f[0], now);
    }
    assert_eq!(r.in_flight(), 3);
    assert_eq!(r.drops().get(DropReason::Superseded), 1);
    // The evicted frame's stragglers neither reopen it nor evict another.
    assert!(push_all(&mut r, &frags[0][1..], now).is_empty());
    assert_eq!(r.in_flight(), 3);
    assert_eq!(r.drops().get(DropReason::Superseded), 1);
    // The three newer frames still complete.
    for f in &frags[1..] {
        assert_eq!(push_all(&mut r, &f[1..], now).len(), 1);
    }
}

#[test]
fn a_new_start_makes_room_by_superseding_the_oldest_frame_whatever_the_ids() {
    let mut r = reassembler();
    let now = Instant::now();
    let ids = [100u8, 101, 102, 95];
    let frags: Vec<_> = ids
        .iter()
        .map(|&id| fragment_frame(&fake_jpeg(300, id), id, 100))
        .collect();
    for f in &frags {
        push(&mut r, &f[0], now);
    }
    assert_eq!(r.drops().get(DropReason::Superseded), 1);
    let in_flight: Vec<u8> = r.in_flight.iter().map(|f| f.key.id).collect();
    assert!(!in_flight.contains(&100), "{in_flight:?}");
    for f in &frags[1..] {
        assert_eq!(push_all(&mut r, &f[1..], now).len(), 1);
    }
}

#[test]
fn delivery_supersedes_older_frames_in_flight() {
    let mut r = reassembler();
    let now = Instant::now();
    let old = fragment_frame(&fake_jpeg(300, 1), 30, 100);
    let new = fragment_frame(&fake_jpeg(300, 2), 31, 100);
    push(&mut r, &old[0], now);
    assert_eq!(push_all(&mut r, &new, now).len(), 1);
    assert_eq!(r.in_flight(), 0);
    assert_eq!(r.drops().get(DropReason::Superseded), 1);
    assert!(push_all(&mut r, &old[1..], now).is_empty());
    assert_eq!(r.in_flight(), 0);
    assert_eq!(r.drops().total(), 1);
}

#[test]
fn frame_without_start_or_end_marker_is_not_jpeg() {
    let mut r = reassembler();
    let now = Instant::now();
    let mut no_start = fake_jpeg(50, 1);
    no_start[1] = 0xD7;
    let mut no_end = fake_jpeg(50, 2);
    let last = no_end.len() - 1;
    no_end[last] = 0xDA;
    assert!(push_all(&mut r, &fragment_frame(&no_start, 1, 20), now).is_empty());
    assert!(push_all(&mut r, &fragment_frame(&no_end, 2, 20), now).is_empty());
    assert!(push_all(&mut r, &fragment_frame(&[0xFF, 0xD8, 0xD9], 3, 20), now).is_empty());
    assert_eq!(r.drops().get(DropReason::NotJpeg), 3);
    assert_eq!(r.frames_completed(), 0);
}

#[test]
fn filler_after_the_end_marker_is_cut_off_up_to_the_bound() {
    let jpeg = fake_jpeg(50, 3);
    let fillers: [(&str, Vec<u8>); 5] = [
        ("zeros", vec![0; 16]),
        ("one byte", vec![0xAA]),
        ("a second end marker", vec![0xFF, 0xD9]),
        (
            "a new start marker and junk",
            b"\xFF\xD8\xFF\xE0junk".to_vec(),
        ),
        ("the bound exactly", vec![0x5A; MAX_TRAILING_PADDING]),
    ];
    for (id, (name, filler)) in fillers.iter().enumerate() {
        let mut r = reassembler();
        let mut padded = jpeg.clone();
        padded.extend(filler);
        let frames = push_all(
            &mut r,
            &fragment_frame(&padded, id as u8, 1000),
            Instant::now(),
        );
        assert_eq!(frames.len(), 1, "{name}");
        assert_eq!(frames[0].jpeg, jpeg, "{name}");
    }
    let mut r = reassembler();
    let mut padded = jpeg.clone();
    padded.extend(vec![0; MAX_TRAILING_PADDING + 1]);
    assert!(push_all(&mut r, &fragment_frame(&padded, 9, 1000), Instant::now()).is_empty());
    assert_eq!(r.drops().get(DropReason::NotJpeg), 1);
}

#[test]
fn an_end_marker_inside_an_app_segment_is_not_the_end() {
    // APP1 holding FF D9 (as an EXIF thumbnail does), then the real picture:
    // cutting at the first FF D9 would deliver a broken JPEG.
    let scan = fake_jpeg(40, 1);
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0xFF, 0xD8];
    jpeg.extend(&scan[2..]);
    let mut padded = jpeg.clone();
    padded.extend([0x11; 100]);
    let mut r = reassembler();
    let frames = push_all(&mut r, &fragment_frame(&padded, 1, 30), Instant::now());
    assert_eq!(frames[0].jpeg, jpeg);
}

#[test]
fn other_formats_are_counted_once_per_frame_and_skipped() {
    let mut r = reassembler();
    let now = Instant::now();
    for mut d in fragment_frame(&fake_jpeg(300, 1), 1, 100) {
        d[2] = 4;
        assert!(push(&mut r, &d, now).is_none());
    }
    assert_eq!(r.drops().get(DropReason::UnsupportedFormat), 1);
    assert_eq!(r.drops().total(), 1);
    assert_eq!(r.in_flight(), 0);
}

#[test]
fn stray_fragment_rejected_at_admission_does_not_hide_the_genuine_frame() {
    let mut r = reassembler();
    let now = Instant::now();
    let jpeg = fake_jpeg(300, 7);
    // A stray first fragment claiming id 5 with a hostile size.
    let stray = datagram(FragmentKind::First, 5, u32::MAX, 0, &[0xFF, 0xD8]);
    assert!(push(&mut r, &stray, now).is_none());
    let delivered = push_all(&mut r, &fragment_frame(&jpeg, 5, 100), now + MS);
    assert_eq!(delivered.len(), 1, "the genuine frame 5 must still arrive");
    assert_eq!(delivered[0].jpeg, jpeg);
    assert_eq!(r.drops().get(DropReason::Oversized), 1);
    assert_eq!(r.drops().total(), 1);
}

#[test]
fn foreign_format_fragment_does_not_break_a_frame_in_flight() {
    let mut r = reassembler();
    let now = Instant::now();
    let jpeg = fake_jpeg(300, 9);
    let fragments = fragment_frame(&jpeg, 6, 100);
    assert!(push(&mut r, &fragments[0], now).is_none());
    let mut foreign = fragments[1].clone();
    foreign[2] = 4;
    for _ in 0..3 {
        assert!(push(&mut r, &foreign, now).is_none());
    }
    let delivered = push_all(&mut r, &fragments[1..], now);
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].jpeg, jpeg);
    assert_eq!(r.drops().get(DropReason::UnsupportedFormat), 1);
    assert_eq!(r.drops().total(), 1);
}

#[test]
fn frame_ids_wrap_at_255() {
    let mut r = reassembler();
    let now = Instant::now();
    let ids = [253u8, 254, 255, 0, 1, 2];
    let jpegs: Vec<Vec<u8>> = ids.iter().map(|&id| fake_jpeg(300, id)).collect();
    let mut delivered = Vec::new();
    // Each frame's last fragment arrives after the next frame started.
    let frags: Vec<Vec<Vec<u8>>> = ids
        .iter()
        .zip(&jpegs)
        .map(|(&id, j)| fragment_frame(j, id, 100))
        .collect();
    for (i, f) in frags.iter().enumerate() {
        delivered.extend(push_all(&mut r, &f[..f.len() - 1], now));
        if i > 0 {
            let prev = &frags[i - 1];
            delivered.extend(push(&mut r, &prev[prev.len() - 1], now));
        }
    }
    let last = &frags[frags.len() - 1];
    delivered.extend(push(&mut r, &last[last.len() - 1], now));
    let got: Vec<u8> = delivered.iter().map(|f| f.frame_id).collect();
    assert_eq!(got, ids);
    assert_eq!(r.drops().total(), 0);
}

#[test]
fn restarted_scope_counting_from_zero_streams_at_once() {
    let mut r = reassembler();
    let start = Instant::now();
    let mut at = start;
    for id in (100u8..110).chain(0..10) {
        at += 50 * MS;
        let frames = push_all(&mut r, &fragment_frame(&fake_jpeg(100, id), id, 40), at);
        assert_eq!(frames.len(), 1, "frame {id}");
    }
    assert_eq!(r.drops().total(), 0);
}

#[test]
fn recycled_buffer_is_reused_for_the_next_frame() {
    let mut r = reassembler();
    let now = Instant::now();
    let frame = push_all(&mut r, &fragment_frame(&fake_jpeg(5000, 1), 1, 1000), now).remove(0);
    let pointer = frame.jpeg.as_ptr();
    r.recycle(frame.jpeg);
    let next = push_all(&mut r, &fragment_frame(&fake_jpeg(4000, 2), 2, 1000), now).remove(0);
    assert_eq!(next.jpeg.as_ptr(), pointer);
}

#[test]
fn drop_counts_report_per_reason() {
    let mut counts = DropCounts::default();
    assert_eq!(counts.to_string(), "none");
    counts.add(DropReason::Superseded);
    counts.add(DropReason::Incomplete);
    counts.add(DropReason::Incomplete);
    counts.add(DropReason::Incomplete);
    assert_eq!(counts.to_string(), "incomplete=3 superseded=1");
    assert_eq!(counts.total(), 4);
    assert_eq!(counts.get(DropReason::NotJpeg), 0);
    let listed: Vec<_> = counts.iter().collect();
    assert_eq!(
        listed,
        vec![(DropReason::Incomplete, 3), (DropReason::Superseded, 1)]
    );
    let labels: std::collections::HashSet<_> = DropReason::ALL.iter().map(|r| r.label()).collect();
    assert_eq!(labels.len(), DropReason::ALL.len());
    for (i, reason) in DropReason::ALL.iter().enumerate() {
        assert_eq!(reason.slot(), i);
    }
}

/// A frame, a fragment size, an arrival order and some duplicates.
fn shuffled_frame() -> impl Strategy<Value = (Vec<u8>, Vec<Vec<u8>>)> {
    (
        proptest::collection::vec(any::<u8>(), 0..3000),
        1usize..400,
        any::<u8>(),
    )
        .prop_flat_map(|(body, max_payload, id)| {
            let jpeg = jpeg_with_scan(&body);
            let frags = fragment_frame(&jpeg, id, max_payload);
            let n = frags.len();
            let order = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
            let dups = proptest::collection::vec((0..n, 0..=n), 0..10);
            (Just(jpeg), Just(frags), order, dups)
        })
        .prop_map(|(jpeg, frags, order, dups)| {
            let mut arrival: Vec<Vec<u8>> = order.iter().map(|&i| frags[i].clone()).collect();
            for (which, at) in dups {
                arrival.insert(at.min(arrival.len()), frags[which].clone());
            }
            (jpeg, arrival)
        })
}

#[derive(Debug, Clone)]
struct HostileFragment {
    kind: FragmentKind,
    format: u8,
    frame_id: u8,
    frame_size: u32,
    index: u16,
    payload: Vec<u8>,
    advance_ms: u64,
}

fn hostile_fragment() -> impl Strategy<Value = HostileFragment> {
    let kind = prop_oneof![
        Just(FragmentKind::First),
        Just(FragmentKind::Middle),
        Just(FragmentKind::Last)
    ];
    let format = prop_oneof![8 => Just(FORMAT_MJPEG), 1 => any::<u8>()];
    let frame_id = prop_oneof![4 => 0u8..6, 1 => any::<u8>()];
    let frame_size =
        prop_oneof![4 => 1u32..40, 1 => Just(0u32), 1 => Just(u32::MAX), 1 => any::<u32>()];
    let index = prop_oneof![4 => 0u16..5, 1 => any::<u16>()];
    let payload = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..20),
        proptest::collection::vec(any::<u8>(), 0..10).prop_map(|mut v| {
            v.splice(0..0, [0xFF, 0xD8]);
            v
        }),
        proptest::collection::vec(any::<u8>(), 0..10).prop_map(|mut v| {
            v.extend([0xFF, 0xD9]);
            v
        }),
    ];
    let advance_ms = prop_oneof![4 => 0u64..50, 1 => 0u64..3000];
    (
        kind, format, frame_id, frame_size, index, payload, advance_ms,
    )
        .prop_map(
            |(kind, format, frame_id, frame_size, index, payload, advance_ms)| HostileFragment {
                kind,
                format,
                frame_id,
                frame_size,
                index,
                payload,
                advance_ms,
            },
        )
}

/// One fragment of a genuine small frame, so hostile sequences also contain
/// frames that can complete (and then be mixed up, if the code were wrong).
fn genuine_fragment() -> impl Strategy<Value = HostileFragment> {
    (
        0u8..6,
        0usize..24,
        0u8..3,
        any::<proptest::sample::Index>(),
        0u64..30,
    )
        .prop_map(|(frame_id, body_len, seed, pick, advance_ms)| {
            let datagrams = fragment_frame(&fake_jpeg(body_len, seed), frame_id, 8);
            let datagram = pick.get(&datagrams);
            let fragment = Fragment::parse(datagram).expect("fragment_frame output parses");
            HostileFragment {
                kind: fragment.header.kind,
                format: fragment.header.format,
                frame_id,
                frame_size: fragment.header.frame_size,
                index: fragment.header.index,
                payload: fragment.payload.to_vec(),
                advance_ms,
            }
        })
}

/// Source frames by id, the `(frame id, datagram)`s a lossy link delivered
/// for them, and the ids of the frames that lost nothing.
type LossyStream = (HashMap<u8, Vec<u8>>, Vec<(u8, Vec<u8>)>, Vec<u8>);

fn lossy_stream() -> impl Strategy<Value = LossyStream> {
    let frame = (
        prop_oneof![Just(60usize), Just(61), 0usize..300],
        any::<u8>(),
        proptest::collection::vec(0u8..10, 1..10),
        any::<bool>(),
    );
    (
        any::<u8>(),
        1usize..64,
        proptest::collection::vec(frame, 1..80),
    )
        .prop_map(|(first_id, max_payload, frames)| {
            let mut sources = HashMap::new();
            let mut datagrams = Vec::new();
            let mut complete_ids = Vec::new();
            for (n, (body_len, seed, loss_dice, reverse)) in frames.into_iter().enumerate() {
                let id = first_id.wrapping_add(n as u8);
                let jpeg = fake_jpeg(body_len, seed);
                let mut frags = fragment_frame(&jpeg, id, max_payload);
                if reverse {
                    frags.reverse();
                }
                let mut lost_any = false;
                for (i, f) in frags.into_iter().enumerate() {
                    // Lose about one fragment in ten.
                    if loss_dice.get(i % loss_dice.len()) == Some(&0) {
                        lost_any = true;
                    } else {
                        datagrams.push((id, f));
                    }
                }
                if !lost_any {
                    complete_ids.push(id);
                }
                sources.insert(id, jpeg);
            }
            (sources, datagrams, complete_ids)
        })
}

proptest! {
    #[test]
    fn any_order_with_duplicates_yields_the_frame_and_only_exact_copies((jpeg, arrival) in shuffled_frame()) {
        let mut r = reassembler();
        let now = Instant::now();
        let frames = push_all(&mut r, &arrival, now);
        prop_assert!(!frames.is_empty());
        for frame in &frames {
            prop_assert_eq!(&frame.jpeg, &jpeg);
        }
        prop_assert_eq!(r.drops().total(), 0);
    }

    #[test]
    fn hostile_fragments_never_break_the_invariants(
        fragments in proptest::collection::vec(prop_oneof![hostile_fragment(), genuine_fragment()], 0..300),
    ) {
        let limits = ReassemblyLimits {
            max_frame_bytes: 32,
            max_fragments: 8,
            frame_timeout: Duration::from_secs(1),
            max_frames_in_flight: 3,
        };
        let mut r = Reassembler::new(limits.clone());
        let mut now = Instant::now();
        let mut delivered = 0u64;
        for h in fragments {
            now += Duration::from_millis(h.advance_ms);
            let fragment = Fragment {
                header: FragmentHeader {
                    kind: h.kind,
                    format: h.format,
                    frame_id: h.frame_id,
                    frame_size: h.frame_size,
                    index: h.index,
                    payload_len: h.payload.len() as u16,
                },
                payload: &h.payload,
            };
            if let Some(frame) = r.push(&fragment, now) {
                delivered += 1;
                prop_assert!(frame.jpeg.starts_with(&crate::jpeg::START_OF_IMAGE));
                prop_assert!(frame.jpeg.ends_with(&crate::jpeg::END_OF_IMAGE));
                prop_assert!(frame.jpeg.len() <= limits.max_frame_bytes);
                r.recycle(frame.jpeg);
            }
            prop_assert!(r.in_flight() <= limits.max_frames_in_flight);
            prop_assert!(r.buffered_bytes() <= limits.max_frames_in_flight * limits.max_frame_bytes);
            prop_assert!(r.in_flight.iter().all(|f| f.data.capacity() <= limits.max_frame_bytes));
            prop_assert!(r.spare_buffers.len() <= limits.max_frames_in_flight + 1);
        }
        prop_assert_eq!(r.frames_completed(), delivered);
        r.expire(now + limits.frame_timeout);
        prop_assert_eq!(r.in_flight(), 0);
    }

    #[test]
    fn lossy_stream_delivers_only_whole_source_frames((sources, datagrams, complete_ids) in lossy_stream()) {
        let mut r = reassembler();
        let mut now = Instant::now();
        let mut current = None;
        let mut delivered = Vec::new();
        for (id, d) in &datagrams {
            if current != Some(*id) {
                current = Some(*id);
                now += 30 * MS;
            }
            if let Some(frame) = push(&mut r, d, now) {
                prop_assert_eq!(Some(&frame.jpeg), sources.get(&frame.frame_id));
                delivered.push(frame.frame_id);
                r.recycle(frame.jpeg);
            }
        }
        // Every frame that arrived whole is delivered, and nothing else.
        prop_assert_eq!(delivered, complete_ids);
    }
}

/// One hard case for the frame-id-blind reassembly: frames as (name, id,
/// body length), fragments of 100 bytes (a body of 250 makes 3), the arrival
/// order as `A0 A1 B0 A2 ...` (frame name, fragment index), and what must come
/// out: the frames delivered, in order, and every drop counted.
struct HardCase {
    name: &'static str,
    frames: &'static [(char, u8, usize)],
    arrivals: &'static str,
    delivered: &'static str,
    drops: &'static [(DropReason, u64)],
}

const HARD_CASES: &[HardCase] = &[
    HardCase {
        name: "constant id streams every frame",
        frames: &[('A', 7, 250), ('B', 7, 260), ('C', 7, 270)],
        arrivals: "A0 A1 A2 B0 B1 B2 C0 C1 C2",
        delivered: "A B C",
        drops: &[],
    },
    HardCase {
        name: "constant id, a late fragment of the previous frame interleaved",
        frames: &[('A', 7, 250), ('B', 7, 260)],
        arrivals: "A0 A1 B0 A2 B1 B2",
        delivered: "A B",
        drops: &[],
    },
    HardCase {
        name: "constant id, the previous frame ends after the next one completed",
        frames: &[('A', 7, 250), ('B', 7, 260)],
        arrivals: "A0 A1 B0 B1 B2 A2",
        delivered: "B",
        drops: &[(DropReason::Superseded, 1)],
    },
    HardCase {
        name: "duplicate start after its frame completed, same id and size next",
        frames: &[('A', 7, 250), ('B', 7, 250)],
        arrivals: "A0 A1 A2 A0 B0 B1 B2",
        delivered: "A B",
        drops: &[],
    },
    HardCase {
        name: "a whole completed frame repeated inside the next one of the same id and size",
        frames: &[('A', 7, 250), ('B', 7, 250)],
        arrivals: "A0 A1 A2 B0 A0 B1 A1 A2 B2",
        delivered: "A B",
        drops: &[],
    },
    HardCase {
        name: "duplicated last fragment",
        frames: &[('A', 7, 250), ('B', 8, 250)],
        arrivals: "A0 A1 A2 A2 B0 B1 B2 B2",
        delivered: "A B",
        drops: &[],
    },
    HardCase {
        name: "duplicated last fragment inside the next frame of the same id and size",
        frames: &[('A', 7, 250), ('B', 7, 250)],
        arrivals: "A0 A1 A2 B0 B1 A2 B2",
        delivered: "A B",
        drops: &[],
    },
    HardCase {
        name: "id reused while the old frame is in flight, another size",
        frames: &[('A', 7, 250), ('B', 7, 260)],
        arrivals: "A0 B0 A1 B1 A2 B2",
        delivered: "A B",
        drops: &[],
    },
    HardCase {
        // The old frame's missing fragment could not be told from the new
        // one's: neither is delivered, and nothing is mixed.
        name: "id reused while the old frame is in flight, same size",
        frames: &[('A', 7, 250), ('B', 7, 250)],
        arrivals: "A0 A1 B0 B1 B2 A2",
        delivered: "",
        drops: &[(DropReason::Superseded, 1)],
    },
    HardCase {
        name: "ids wrap at 255",
        frames: &[
            ('A', 254, 250),
            ('B', 255, 250),
            ('C', 0, 250),
            ('D', 1, 250),
        ],
        arrivals: "A0 A1 B0 A2 B1 C0 B2 C1 D0 C2 D1 D2",
        delivered: "A B C D",
        drops: &[],
    },
    HardCase {
        name: "ids stepping by 3, then out of order",
        frames: &[
            ('A', 9, 250),
            ('B', 12, 250),
            ('C', 3, 250),
            ('D', 200, 250),
        ],
        arrivals: "A0 A1 A2 B0 B1 B2 C0 C1 C2 D0 D1 D2",
        delivered: "A B C D",
        drops: &[],
    },
    HardCase {
        name: "lost start fragment",
        frames: &[('A', 7, 250), ('B', 7, 260)],
        arrivals: "A1 A2 B0 B1 B2",
        delivered: "B",
        drops: &[(DropReason::Superseded, 1)],
    },
    HardCase {
        name: "lost end fragment",
        frames: &[('A', 7, 250), ('B', 7, 260)],
        arrivals: "A0 A1 B0 B1 B2",
        delivered: "B",
        drops: &[(DropReason::Superseded, 1)],
    },
    HardCase {
        name: "start fragment after the others of its frame",
        frames: &[('A', 7, 250), ('B', 7, 260)],
        arrivals: "A2 A1 A0 B1 B0 B2",
        delivered: "A B",
        drops: &[],
    },
    HardCase {
        // Same id, size and bytes: a repeat, delivered as an exact copy.
        name: "a bit-identical frame sent twice",
        frames: &[('A', 7, 250)],
        arrivals: "A0 A1 A2 A0 A1 A2",
        delivered: "A A",
        drops: &[],
    },
    HardCase {
        name: "a repeat of a finished frame does not cost the frame in flight",
        frames: &[('A', 7, 250), ('B', 8, 260)],
        arrivals: "A0 A1 A2 B0 A0 A1 A2 B1 B2",
        delivered: "A A B",
        drops: &[],
    },
    HardCase {
        name: "a partial repeat gives way to a new frame with the same id and size",
        frames: &[('A', 7, 250), ('B', 7, 250)],
        arrivals: "A0 A1 A2 A0 A1 B0 B1 A2 B2",
        delivered: "A B",
        drops: &[],
    },
];

#[test]
fn hard_cases_of_real_scopes() {
    for case in HARD_CASES {
        let jpegs: HashMap<char, (u8, Vec<u8>)> = case
            .frames
            .iter()
            .map(|&(name, id, body)| (name, (id, fake_jpeg(body, name as u8))))
            .collect();
        let mut r = reassembler();
        let mut now = Instant::now();
        let mut delivered = Vec::new();
        for arrival in case.arrivals.split_whitespace() {
            let mut chars = arrival.chars();
            let name = chars.next().unwrap();
            let index: usize = chars.as_str().parse().unwrap();
            let (id, jpeg) = &jpegs[&name];
            now += MS;
            if let Some(frame) = push(&mut r, &fragment_frame(jpeg, *id, 100)[index], now) {
                let name = jpegs
                    .iter()
                    .find(|(_, (_, source))| *source == frame.jpeg)
                    .map(|(name, _)| name.to_string())
                    .unwrap_or_else(|| panic!("{}: a frame that was never sent", case.name));
                delivered.push(name);
            }
        }
        assert_eq!(delivered.join(" "), case.delivered, "{}", case.name);
        let mut drops = DropCounts::default();
        for &(reason, count) in case.drops {
            for _ in 0..count {
                drops.add(reason);
            }
        }
        assert_eq!(r.drops(), &drops, "{}", case.name);
    }
}

/// How a scope numbers its frames.
#[derive(Debug, Clone, Copy)]
enum IdScheme {
    Constant(u8),
    Step(u8),
    Random,
}

fn id_scheme() -> impl Strategy<Value = IdScheme> {
    prop_oneof![
        any::<u8>().prop_map(IdScheme::Constant),
        (2u8..=255).prop_map(IdScheme::Step),
        Just(IdScheme::Random),
    ]
}

/// A stream from a scope with any id scheme, on a link that swaps
/// neighbours within a frame and duplicates fragments (a copy lands anywhere
/// among the fragments of the same frame or of one up to three frames
/// later), but loses nothing. Frame sizes come from a small set, so
/// consecutive frames often share id *and* size. Returns the source frames
/// in order and the datagrams in arrival order.
/// Source frames, each frame's datagrams, and all datagrams in arrival order.
type DuplicatingStream = (Vec<Vec<u8>>, Vec<Vec<Vec<u8>>>, Vec<Vec<u8>>);

fn duplicating_stream() -> impl Strategy<Value = DuplicatingStream> {
    let frame = (
        prop_oneof![Just(150usize), Just(151), 100usize..400],
        any::<u8>(),
    );
    let dice = (
        0u8..6,
        0usize..4,
        any::<proptest::sample::Index>(),
        any::<proptest::sample::Index>(),
    );
    (
        id_scheme(),
        any::<u8>(),
        proptest::collection::vec((frame, proptest::collection::vec(dice, 1..12)), 1..40),
    )
        .prop_map(|(scheme, first_id, frames)| {
            let mut sources: Vec<Vec<u8>> = Vec::new();
            let mut per_frame: Vec<Vec<Vec<u8>>> = Vec::new();
            let mut id = first_id;
            for (n, ((body_len, seed), _)) in frames.iter().enumerate() {
                id = match scheme {
                    IdScheme::Constant(c) => c,
                    IdScheme::Step(step) if n > 0 => id.wrapping_add(step),
                    IdScheme::Step(_) => id,
                    IdScheme::Random => seed ^ (n as u8).wrapping_mul(97),
                };
                // No two frames are bit-identical: each has its own seed.
                let jpeg = fake_jpeg(*body_len, first_id.wrapping_add(n as u8));
                sources.push(jpeg.clone());
                per_frame.push(fragment_frame(&jpeg, id, 64));
            }
            let mut arrivals = Vec::new();
            for (n, (_, dice)) in frames.iter().enumerate() {
                let mut these = per_frame[n].clone();
                for &(roll, back, which, at) in dice {
                    match roll {
                        0 => {
                            let i = which.index(these.len());
                            if i + 1 < these.len() {
                                these.swap(i, i + 1);
                            }
                        }
                        1 | 2 if back <= n => {
                            let copy = which.get(&per_frame[n - back]).clone();
                            these.insert(at.index(these.len() + 1), copy);
                        }
                        _ => {}
                    }
                }
                arrivals.extend(these);
            }
            (sources, per_frame, arrivals)
        })
}

/// Source frames, and the arrivals as (frame number, datagram).
type NumberedArrivals = (Vec<Vec<u8>>, Vec<(usize, Vec<u8>)>);

/// A stream with any id scheme on a link that loses, duplicates and swaps
/// fragments; every frame has its own size, as consecutive frames of a real
/// picture do.
fn lossy_scope_stream() -> impl Strategy<Value = NumberedArrivals> {
    let dice = proptest::collection::vec((0u8..12, any::<proptest::sample::Index>()), 1..12);
    (
        id_scheme(),
        proptest::collection::vec((any::<u8>(), dice), 1..40),
    )
        .prop_map(|(scheme, frames)| {
            let mut sources = Vec::new();
            let mut arrivals = Vec::new();
            let mut id = 0u8;
            for (n, (seed, dice)) in frames.into_iter().enumerate() {
                id = match scheme {
                    IdScheme::Constant(c) => c,
                    IdScheme::Step(step) => id.wrapping_add(step),
                    IdScheme::Random => seed,
                };
                // Distinct sizes: 100 + 3n bytes of body.
                let jpeg = fake_jpeg(100 + 3 * n, seed);
                let mut frags: Vec<Option<Vec<u8>>> = fragment_frame(&jpeg, id, 50)
                    .into_iter()
                    .map(Some)
                    .collect();
                for (roll, which) in dice {
                    let i = which.index(frags.len());
                    match roll {
                        0 => frags[i] = None,
                        1 if i + 1 < frags.len() => frags.swap(i, i + 1),
                        2 => {
                            let copy = frags[i].clone();
                            frags.push(copy);
                        }
                        _ => {}
                    }
                }
                arrivals.extend(frags.into_iter().flatten().map(|d| (n, d)));
                sources.push(jpeg);
            }
            (sources, arrivals)
        })
}

proptest! {
    /// Whatever the ids, duplicates never make a damaged picture and never
    /// cost a frame when nothing is lost.
    #[test]
    fn duplicates_never_damage_or_lose_a_frame((sources, fragments, arrivals) in duplicating_stream()) {
        let mut r = reassembler();
        let mut now = Instant::now();
        let mut delivered = Vec::new();
        for datagram in &arrivals {
            now += MS;
            if let Some(frame) = push(&mut r, datagram, now) {
                let n = sources.iter().position(|s| *s == frame.jpeg);
                prop_assert!(n.is_some(), "a frame that was never sent");
                delivered.extend(n);
                r.recycle(frame.jpeg);
            }
        }
        // A frame may only be missed if a fragment of it is byte-identical to
        // the one at the same index of an earlier frame with the same id and
        // size: then it cannot be told from a repeat of that frame. Repeats
        // come out as exact copies of frames already delivered.
        let ambiguous = |n: usize| {
            (0..n).any(|m| fragments[m].iter().any(|d| fragments[n].contains(d)))
        };
        let expected: Vec<usize> = (0..sources.len()).filter(|&n| !ambiguous(n)).collect();
        let mut firsts: Vec<usize> = Vec::new();
        for &n in &delivered {
            if !firsts.contains(&n) {
                firsts.push(n);
            }
        }
        prop_assert!(firsts.windows(2).all(|w| w[0] < w[1]), "{:?}", delivered);
        let kept: Vec<usize> = firsts.iter().copied().filter(|n| expected.contains(n)).collect();
        prop_assert_eq!(kept, expected.clone());
        if expected.len() == sources.len() {
            prop_assert_eq!(r.drops().total(), 0);
        }
    }

    /// Whatever the ids and the losses: only frames that were sent come out,
    /// and every frame that arrived whole does.
    #[test]
    fn lossy_scope_streams_deliver_only_and_all_whole_frames((sources, arrivals) in lossy_scope_stream()) {
        let mut r = reassembler();
        let mut now = Instant::now();
        let mut delivered = std::collections::BTreeSet::new();
        for (_, datagram) in &arrivals {
            now += MS;
            if let Some(frame) = push(&mut r, datagram, now) {
                let n = sources.iter().position(|s| *s == frame.jpeg);
                prop_assert!(n.is_some(), "a frame that was never sent");
                delivered.extend(n);
                r.recycle(frame.jpeg);
            }
        }
        for (n, source) in sources.iter().enumerate() {
            let fragments = fragment_frame(source, 0, 50).len();
            let arrived: std::collections::BTreeSet<usize> = arrivals
                .iter()
                .filter(|(m, _)| *m == n)
                .map(|(_, d)| usize::from(Fragment::parse(d).unwrap().header.index))
                .collect();
            if arrived.len() == fragments {
                prop_assert!(delivered.contains(&n), "frame {} arrived whole but was not delivered", n);
            }
        }
    }
}
