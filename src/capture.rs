//! Capture files: every datagram between scopecam and a scope, in pcapng.
//!
//! `scopecam capture` writes them and `scopecam simulate --replay` plays them back;
//! Wireshark and tshark open them as ordinary IPv4/UDP traffic. Each datagram is one
//! Enhanced Packet Block holding a synthesised IPv4 and UDP header (link type RAW,
//! 101: the block starts at the IP header) with the addresses and ports as they were
//! on the wire, a nanosecond timestamp (`if_tsresol` 9) and the direction in
//! `epb_flags` (inbound: from the scope). The file says what it is twice: the section's
//! `shb_userappl` is `scopecam VERSION`, and the interface's comment is
//! `scopecam-capture v1 scope=IP video=PORT control=PORT` (see [`Metadata`]), which
//! replay needs and checks. Only traffic to or from the scope's two ports is written.
//!
//! This module is the file format only (any `Write`/`Read`), no sockets: the recording
//! client is [`crate::link::capture`], the replaying scope [`crate::simulator::replay`].
//! Layout and replay rules for contributors: docs/captures.md.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use pcap_file::DataLink;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::pcapng::{Block, PcapNgReader, PcapNgWriter};

/// What the interface comment starts with; the version of the metadata that follows.
const MAGIC: &str = "scopecam-capture v1";
/// `shb_userappl` starts with this.
const APPLICATION: &str = "scopecam";
/// epb_flags direction bits (pcapng: 01 inbound, 10 outbound).
const INBOUND: u32 = 0b01;
const OUTBOUND: u32 = 0b10;
/// TTL in the synthesised IPv4 headers (the scope's real TTL is not known).
const TTL: u8 = 64;
/// Largest UDP payload an IPv4 packet can carry.
pub const MAX_PAYLOAD: usize = 65_507;

/// Which scope the capture is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    pub scope: Ipv4Addr,
    pub video_port: u16,
    pub control_port: u16,
}

impl Metadata {
    fn comment(&self) -> String {
        format!(
            "{MAGIC} scope={} video={} control={}",
            self.scope, self.video_port, self.control_port
        )
    }

    fn parse(comment: &str) -> Option<Metadata> {
        let rest = comment.strip_prefix(MAGIC)?;
        let mut scope = None;
        let mut video = None;
        let mut control = None;
        for field in rest.split_whitespace() {
            match field.split_once('=')? {
                ("scope", v) => scope = v.parse().ok(),
                ("video", v) => video = v.parse().ok(),
                ("control", v) => control = v.parse().ok(),
                _ => {}
            }
        }
        Some(Metadata {
            scope: scope?,
            video_port: video?,
            control_port: control?,
        })
    }
}

/// Which of the scope's ports a datagram belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Port {
    Video,
    Control,
}

/// Which way a datagram went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    ToScope,
    FromScope,
}

/// One datagram of a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Since the first datagram of the capture.
    pub at: Duration,
    pub direction: Direction,
    pub port: Port,
    /// The client's (scopecam's) address and port.
    pub client: SocketAddrV4,
    pub payload: Vec<u8>,
}

/// A capture read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    pub metadata: Metadata,
    /// What wrote it (`shb_userappl`).
    pub application: String,
    /// In file order (time order for files scopecam wrote).
    pub records: Vec<Record>,
}

impl Capture {
    /// The datagrams of one direction and port, in order.
    pub fn of(&self, direction: Direction, port: Port) -> impl Iterator<Item = &Record> {
        self.records
            .iter()
            .filter(move |r| r.direction == direction && r.port == port)
    }
}

/// Why a capture cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot write the capture: {0}")]
    Write(#[source] pcap_file::PcapError),
    #[error("not a pcapng file (no pcapng section header at its start)")]
    NotPcapngAtAll,
    #[error("not a pcapng file: {0}")]
    NotPcapng(#[source] pcap_file::PcapError),
    #[error(
        "not a scopecam capture: {0} (make one with `scopecam capture FILE`; captures of other \
         programs lack the scope's address and ports)"
    )]
    Foreign(String),
    #[error("the capture is damaged at block {block}: {reason}")]
    Broken { block: usize, reason: String },
    #[error("cannot build the IPv4 packet: {0}")]
    Build(String),
    #[error("a datagram of {0} bytes does not fit an IPv4 packet")]
    TooLarge(usize),
}

/// Writes a capture: the header blocks at once, then one block per datagram.
pub struct CaptureWriter<W: Write> {
    writer: PcapNgWriter<W>,
    metadata: Metadata,
    /// Bytes written so far, header blocks included.
    bytes: u64,
}

impl<W: Write> CaptureWriter<W> {
    /// Starts a capture of the scope in `metadata`; `interface` names where it was
    /// recorded (the scope's network interface, if pinned).
    pub fn new(out: W, metadata: Metadata, interface: Option<&str>) -> Result<Self, CaptureError> {
        let section = SectionHeaderBlock {
            options: vec![
                SectionHeaderOption::UserApplication(Cow::Owned(format!(
                    "{APPLICATION} {}",
                    env!("CARGO_PKG_VERSION")
                ))),
                SectionHeaderOption::Comment(Cow::Borrowed(
                    "datagrams between scopecam and a borescope, both directions, UDP ports \
                     as on the wire; IPv4 and UDP headers synthesised",
                )),
            ],
            ..SectionHeaderBlock::default()
        };
        let mut writer =
            PcapNgWriter::with_section_header(out, section).map_err(CaptureError::Write)?;
        let mut options = vec![
            InterfaceDescriptionOption::IfTsResol(9),
            InterfaceDescriptionOption::Comment(Cow::Owned(metadata.comment())),
        ];
        if let Some(name) = interface {
            options.push(InterfaceDescriptionOption::IfName(Cow::Owned(
                name.to_owned(),
            )));
        }
        let interface = InterfaceDescriptionBlock {
            linktype: DataLink::RAW,
            snaplen: 0,
            options,
        };
        let bytes = writer
            .write_pcapng_block(interface)
            .map_err(CaptureError::Write)? as u64;
        // The section header block: 28 bytes plus its options, as pcap-file wrote it.
        let bytes = bytes + section_bytes(writer.section());
        Ok(CaptureWriter {
            writer,
            metadata,
            bytes,
        })
    }

    /// Bytes in the file so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The size [`Self::write`] adds for a datagram of `len` bytes.
    pub fn block_size(len: usize) -> u64 {
        // EPB: 28 bytes of fields and 4 of trailing length; the packet (IPv4 20 + UDP 8
        // + payload) padded to 4; the flags option (4 + 4) and the end of options (4).
        let packet = (20 + 8 + len).next_multiple_of(4);
        (32 + packet + 8 + 4) as u64
    }

    /// Writes one datagram, sent (`ToScope`) or received at `when`.
    pub fn write(
        &mut self,
        when: SystemTime,
        direction: Direction,
        port: Port,
        client: SocketAddrV4,
        payload: &[u8],
    ) -> Result<(), CaptureError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(CaptureError::TooLarge(payload.len()));
        }
        let scope = SocketAddrV4::new(
            self.metadata.scope,
            match port {
                Port::Video => self.metadata.video_port,
                Port::Control => self.metadata.control_port,
            },
        );
        let (from, to, flags) = match direction {
            Direction::ToScope => (client, scope, OUTBOUND),
            Direction::FromScope => (scope, client, INBOUND),
        };
        let builder = PacketBuilder::ipv4(from.ip().octets(), to.ip().octets(), TTL)
            .udp(from.port(), to.port());
        let mut packet = Vec::with_capacity(builder.size(payload.len()));
        builder
            .write(&mut packet, payload)
            .map_err(|e| CaptureError::Build(e.to_string()))?;
        let block = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: when.duration_since(UNIX_EPOCH).unwrap_or_default(),
            original_len: packet.len() as u32,
            data: Cow::Owned(packet),
            options: vec![EnhancedPacketOption::Flags(flags)],
        };
        let written = self
            .writer
            .write_pcapng_block(block)
            .map_err(CaptureError::Write)?;
        self.bytes += written as u64;
        Ok(())
    }

    /// Flushes and hands back the output.
    pub fn finish(self) -> Result<W, CaptureError> {
        let mut out = self.writer.into_inner();
        out.flush()
            .map_err(|e| CaptureError::Write(pcap_file::PcapError::IoError(e)))?;
        Ok(out)
    }
}

/// The size of a section header block with its options.
fn section_bytes(section: &SectionHeaderBlock) -> u64 {
    let options: usize = section
        .options
        .iter()
        .map(|option| match option {
            SectionHeaderOption::UserApplication(text) | SectionHeaderOption::Comment(text) => {
                4 + text.len().next_multiple_of(4)
            }
            _ => 0,
        })
        .sum();
    (28 + options + if options > 0 { 4 } else { 0 }) as u64
}

/// Reads a capture scopecam wrote; anything else is refused with the reason.
pub fn read_capture(mut input: impl Read) -> Result<Capture, CaptureError> {
    // Every pcapng file starts with a section header block, type 0x0A0D0D0A.
    let mut start = [0u8; 4];
    if input.read_exact(&mut start).is_err() || start != [0x0A, 0x0D, 0x0D, 0x0A] {
        return Err(CaptureError::NotPcapngAtAll);
    }
    let mut reader = PcapNgReader::new(start.chain(input)).map_err(CaptureError::NotPcapng)?;
    let application = reader
        .section()
        .options
        .iter()
        .find_map(|option| match option {
            SectionHeaderOption::UserApplication(text) => Some(text.to_string()),
            _ => None,
        })
        .unwrap_or_default();
    if application.split_whitespace().next() != Some(APPLICATION) {
        let made_by = if application.is_empty() {
            "it does not say what made it".to_owned()
        } else {
            format!("it was made by '{application}'")
        };
        return Err(CaptureError::Foreign(made_by));
    }
    let mut metadata = None;
    let mut records = Vec::new();
    let mut first: Option<Duration> = None;
    let mut block = 1;
    while let Some(next) = reader.next_block() {
        block += 1;
        let broken = |reason: String| CaptureError::Broken { block, reason };
        match next.map_err(|e| broken(e.to_string()))? {
            Block::InterfaceDescription(interface) => {
                if metadata.is_some() {
                    return Err(broken("a second interface".into()));
                }
                if interface.linktype != DataLink::RAW {
                    return Err(CaptureError::Foreign(format!(
                        "link type {:?}, not raw IPv4",
                        interface.linktype
                    )));
                }
                let comment = interface.options.iter().find_map(|option| match option {
                    InterfaceDescriptionOption::Comment(text) => Metadata::parse(text),
                    _ => None,
                });
                metadata = Some(comment.ok_or_else(|| {
                    CaptureError::Foreign(format!("no '{MAGIC} scope=... video=... control=...'"))
                })?);
            }
            Block::EnhancedPacket(packet) => {
                let Some(metadata) = metadata else {
                    return Err(broken("a packet before the interface description".into()));
                };
                let at = {
                    let first = *first.get_or_insert(packet.timestamp);
                    packet.timestamp.saturating_sub(first)
                };
                records.push(record(&metadata, at, &packet.data).map_err(broken)?);
            }
            // Statistics, name resolution and the like: not ours, harmless.
            _ => {}
        }
    }
    let metadata = metadata.ok_or_else(|| CaptureError::Foreign("no interface block".into()))?;
    Ok(Capture {
        metadata,
        application,
        records,
    })
}

/// One packet's datagram, which must be to or from one of the scope's ports.
fn record(metadata: &Metadata, at: Duration, data: &[u8]) -> Result<Record, String> {
    let sliced = SlicedPacket::from_ip(data).map_err(|e| format!("not an IPv4 packet: {e}"))?;
    let Some(NetSlice::Ipv4(ip)) = &sliced.net else {
        return Err("not an IPv4 packet".into());
    };
    let Some(TransportSlice::Udp(udp)) = &sliced.transport else {
        return Err("not a UDP datagram".into());
    };
    let header = ip.header();
    let source = SocketAddrV4::new(header.source_addr(), udp.source_port());
    let destination = SocketAddrV4::new(header.destination_addr(), udp.destination_port());
    let port_of = |addr: SocketAddrV4| {
        if *addr.ip() != metadata.scope {
            None
        } else if addr.port() == metadata.video_port {
            Some(Port::Video)
        } else if addr.port() == metadata.control_port {
            Some(Port::Control)
        } else {
            None
        }
    };
    let (direction, port, client) = match (port_of(source), port_of(destination)) {
        (Some(port), None) => (Direction::FromScope, port, destination),
        (None, Some(port)) => (Direction::ToScope, port, source),
        _ => {
            return Err(format!(
                "{source} -> {destination} is not to or from the scope"
            ));
        }
    };
    Ok(Record {
        at,
        direction,
        port,
        client,
        payload: udp.payload().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata() -> Metadata {
        Metadata {
            scope: Ipv4Addr::new(127, 0, 0, 5),
            video_port: 8030,
            control_port: 50000,
        }
    }

    fn sample() -> Vec<u8> {
        let client = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 40000);
        let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut w = CaptureWriter::new(Vec::new(), metadata(), Some("lo")).unwrap();
        let mut expected = w.bytes();
        let datagrams: [(u64, Direction, Port, &[u8]); 3] = [
            (0, Direction::ToScope, Port::Video, b"heartbeat"),
            (1_500, Direction::FromScope, Port::Video, &[0x66; 1474]),
            (2_000_123, Direction::FromScope, Port::Control, b"RETCMD"),
        ];
        for (nanos, direction, port, payload) in datagrams {
            let when = t0 + Duration::from_nanos(nanos);
            w.write(when, direction, port, client, payload).unwrap();
            expected += CaptureWriter::<Vec<u8>>::block_size(payload.len());
            assert_eq!(w.bytes(), expected, "block size");
        }
        let out = w.finish().unwrap();
        assert_eq!(out.len() as u64, expected, "bytes() counts the whole file");
        out
    }

    #[test]
    fn written_datagrams_read_back() {
        let capture = read_capture(sample().as_slice()).unwrap();
        assert_eq!(capture.metadata, metadata());
        assert!(capture.application.starts_with("scopecam "));
        let r = &capture.records;
        assert_eq!(r.len(), 3);
        assert_eq!(
            (r[0].at, r[0].direction, r[0].port),
            (Duration::ZERO, Direction::ToScope, Port::Video)
        );
        assert_eq!(r[0].payload, b"heartbeat");
        assert_eq!(r[0].client, "127.0.0.1:40000".parse().unwrap());
        assert_eq!(r[1].at, Duration::from_nanos(1_500));
        assert_eq!(r[1].payload.len(), 1474);
        assert_eq!(
            (r[2].at, r[2].direction, r[2].port),
            (
                Duration::from_nanos(2_000_123),
                Direction::FromScope,
                Port::Control
            )
        );
        assert_eq!(capture.of(Direction::FromScope, Port::Video).count(), 1);
    }

    #[test]
    fn other_files_are_refused_with_the_reason() {
        let err = read_capture(&b"GIF89a not a capture at all"[..]).unwrap_err();
        assert!(matches!(err, CaptureError::NotPcapngAtAll), "{err}");
        let err = read_capture(&b""[..]).unwrap_err();
        assert!(matches!(err, CaptureError::NotPcapngAtAll), "{err}");
        // A pcapng another program wrote.
        let section = SectionHeaderBlock {
            options: vec![SectionHeaderOption::UserApplication(Cow::Borrowed(
                "Dumpcap (Wireshark) 4.0",
            ))],
            ..SectionHeaderBlock::default()
        };
        let other = PcapNgWriter::with_section_header(Vec::new(), section)
            .unwrap()
            .into_inner();
        let err = read_capture(other.as_slice()).unwrap_err();
        assert!(err.to_string().contains("Dumpcap (Wireshark) 4.0"), "{err}");
        assert!(err.to_string().contains("not a scopecam capture"), "{err}");
    }

    #[test]
    fn a_damaged_capture_is_refused() {
        let good = sample();
        // Cut inside the last packet block, as a killed writer leaves it.
        let cut = &good[..good.len() - 10];
        let err = read_capture(cut).unwrap_err();
        assert!(
            matches!(err, CaptureError::Broken { block: 5, .. }),
            "{err}"
        );
        // A packet that is not to or from the scope.
        let client = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 40000);
        let mut w = CaptureWriter::new(Vec::new(), metadata(), None).unwrap();
        w.metadata.video_port = 9999;
        w.write(
            SystemTime::now(),
            Direction::ToScope,
            Port::Video,
            client,
            b"x",
        )
        .unwrap();
        let err = read_capture(w.finish().unwrap().as_slice()).unwrap_err();
        assert!(
            err.to_string().contains("not to or from the scope"),
            "{err}"
        );
    }

    #[test]
    fn metadata_round_trips_and_rejects_missing_fields() {
        assert_eq!(Metadata::parse(&metadata().comment()), Some(metadata()));
        assert_eq!(Metadata::parse("scopecam-capture v1 scope=1.2.3.4"), None);
        assert_eq!(
            Metadata::parse("scopecam-capture v2 scope=1.2.3.4 video=1 control=2"),
            None
        );
    }
}
