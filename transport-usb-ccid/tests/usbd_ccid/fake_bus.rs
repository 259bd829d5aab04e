//! A fake `usb_device::bus::UsbBus`: the device side sees a peripheral with one-packet endpoint
//! buffers, the host side ([`HostPort`]) puts SETUP and OUT packets into them and takes IN packets
//! out, as a USB host controller would, one packet at a time.
//!
//! Hardware behaviour modelled (the parts `usb-device` and `usbd-ccid` rely on):
//! - every endpoint holds at most one packet; a device `write` to a full IN buffer is
//!   `WouldBlock`, a host OUT to a full OUT buffer is a NAK (the host retries);
//! - `poll` reports SETUP and OUT packets waiting to be read (for as long as they wait) and IN
//!   packets the host took since the last poll (`ep_in_complete`);
//! - a SETUP packet flushes the EP0 IN buffer (a new control transfer aborts the old one);
//! - stalls are per endpoint; a stalled endpoint answers the host with STALL.

use std::sync::{Arc, Mutex, MutexGuard};

use usb_device::bus::{PollResult, UsbBus};
use usb_device::endpoint::{EndpointAddress, EndpointType};
use usb_device::{UsbDirection, UsbError};

/// Highest endpoint number (USB allows 0..=15).
const MAX_EP: u8 = 15;

/// One allocated endpoint.
#[derive(Debug)]
struct Ep {
    addr: u8,
    ty: EndpointType,
    max_packet: u16,
    stalled: bool,
    /// OUT: a packet from the host waiting to be read; IN: a packet from the device waiting for
    /// the host.
    packet: Option<Vec<u8>>,
    /// EP0 OUT only: the waiting packet is a SETUP packet.
    setup: bool,
}

/// What both sides of the bus share.
#[derive(Debug, Default)]
struct BusState {
    eps: Vec<Ep>,
    enabled: bool,
    reset_pending: bool,
    address: u8,
    /// Bit n: the host took the IN packet of endpoint n since the last poll.
    in_complete: u16,
}

impl BusState {
    fn ep(&mut self, addr: u8) -> Option<&mut Ep> {
        self.eps.iter_mut().find(|e| e.addr == addr)
    }
}

fn lock(state: &Mutex<BusState>) -> MutexGuard<'_, BusState> {
    // A panic in one test thread must not hide the bus from the report of another.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The device-side peripheral handed to `UsbBusAllocator::new`.
#[derive(Debug)]
pub struct FakeBus {
    state: Arc<Mutex<BusState>>,
}

/// The host controller's side of the same bus.
#[derive(Clone, Debug)]
pub struct HostPort {
    state: Arc<Mutex<BusState>>,
}

/// What a host OUT or IN token got back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handshake {
    /// The endpoint's buffer is busy (OUT) or empty (IN): try again later.
    Nak,
    /// The endpoint is halted.
    Stall,
    /// No such endpoint.
    NoEndpoint,
}

impl std::fmt::Display for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Nak => "NAK",
            Self::Stall => "STALL",
            Self::NoEndpoint => "no such endpoint",
        })
    }
}

/// A new bus and the host port to it.
pub fn new_bus() -> (FakeBus, HostPort) {
    let state = Arc::new(Mutex::new(BusState::default()));
    (
        FakeBus {
            state: state.clone(),
        },
        HostPort { state },
    )
}

impl UsbBus for FakeBus {
    fn alloc_ep(
        &mut self,
        ep_dir: UsbDirection,
        ep_addr: Option<EndpointAddress>,
        ep_type: EndpointType,
        max_packet_size: u16,
        _interval: u8,
    ) -> usb_device::Result<EndpointAddress> {
        let mut s = lock(&self.state);
        if s.enabled {
            return Err(UsbError::InvalidState);
        }
        if max_packet_size > 64 {
            // Full speed: no endpoint buffer above 64 bytes on this peripheral.
            return Err(UsbError::Unsupported);
        }
        let dir_bit = match ep_dir {
            UsbDirection::In => 0x80,
            UsbDirection::Out => 0x00,
        };
        let addr = match ep_addr {
            Some(a) => {
                let a = u8::from(a);
                if s.eps.iter().any(|e| e.addr == a) {
                    return Err(UsbError::InvalidEndpoint);
                }
                a
            }
            None => (1..=MAX_EP)
                .map(|n| n | dir_bit)
                .find(|a| !s.eps.iter().any(|e| e.addr == *a))
                .ok_or(UsbError::EndpointOverflow)?,
        };
        s.eps.push(Ep {
            addr,
            ty: ep_type,
            max_packet: max_packet_size,
            stalled: false,
            packet: None,
            setup: false,
        });
        Ok(EndpointAddress::from(addr))
    }

    fn enable(&mut self) {
        let mut s = lock(&self.state);
        s.enabled = true;
        // The host sees the device attach and resets the bus first.
        s.reset_pending = true;
    }

    fn reset(&self) {
        let mut s = lock(&self.state);
        s.address = 0;
        s.in_complete = 0;
        for ep in &mut s.eps {
            ep.packet = None;
            ep.setup = false;
            ep.stalled = false;
        }
    }

    fn set_device_address(&self, addr: u8) {
        lock(&self.state).address = addr;
    }

    fn write(&self, ep_addr: EndpointAddress, buf: &[u8]) -> usb_device::Result<usize> {
        let mut s = lock(&self.state);
        let ep = s.ep(u8::from(ep_addr)).ok_or(UsbError::InvalidEndpoint)?;
        if ep.addr & 0x80 == 0 {
            return Err(UsbError::InvalidEndpoint);
        }
        if buf.len() > usize::from(ep.max_packet) {
            return Err(UsbError::BufferOverflow);
        }
        if ep.packet.is_some() {
            return Err(UsbError::WouldBlock);
        }
        ep.packet = Some(buf.to_vec());
        Ok(buf.len())
    }

    fn read(&self, ep_addr: EndpointAddress, buf: &mut [u8]) -> usb_device::Result<usize> {
        let mut s = lock(&self.state);
        let ep = s.ep(u8::from(ep_addr)).ok_or(UsbError::InvalidEndpoint)?;
        if ep.addr & 0x80 != 0 {
            return Err(UsbError::InvalidEndpoint);
        }
        let Some(packet) = ep.packet.as_ref() else {
            return Err(UsbError::WouldBlock);
        };
        let n = packet.len();
        let dst = buf.get_mut(..n).ok_or(UsbError::BufferOverflow)?;
        dst.copy_from_slice(packet);
        ep.packet = None;
        ep.setup = false;
        Ok(n)
    }

    fn set_stalled(&self, ep_addr: EndpointAddress, stalled: bool) {
        if let Some(ep) = lock(&self.state).ep(u8::from(ep_addr)) {
            ep.stalled = stalled;
        }
    }

    fn is_stalled(&self, ep_addr: EndpointAddress) -> bool {
        lock(&self.state)
            .ep(u8::from(ep_addr))
            .is_some_and(|e| e.stalled)
    }

    fn suspend(&self) {}

    fn resume(&self) {}

    fn poll(&self) -> PollResult {
        let mut s = lock(&self.state);
        if s.reset_pending {
            s.reset_pending = false;
            return PollResult::Reset;
        }
        let (mut ep_out, mut ep_setup) = (0u16, 0u16);
        for ep in &s.eps {
            if ep.addr & 0x80 == 0 && ep.packet.is_some() {
                let bit = 1u16 << (ep.addr & 0x0F);
                if ep.setup {
                    ep_setup |= bit;
                } else {
                    ep_out |= bit;
                }
            }
        }
        let ep_in_complete = core::mem::take(&mut s.in_complete);
        if ep_out | ep_setup | ep_in_complete == 0 {
            PollResult::None
        } else {
            PollResult::Data {
                ep_out,
                ep_in_complete,
                ep_setup,
            }
        }
    }
}

impl HostPort {
    /// Sends a SETUP packet to EP0 (never NAKed; it flushes EP0 IN and clears EP0 stalls).
    pub fn setup(&self, packet: [u8; 8]) {
        let mut s = lock(&self.state);
        if let Some(ep_in) = s.ep(0x80) {
            ep_in.packet = None;
            ep_in.stalled = false;
        }
        if let Some(ep_out) = s.ep(0x00) {
            ep_out.packet = Some(packet.to_vec());
            ep_out.setup = true;
            ep_out.stalled = false;
        }
    }

    /// Sends one OUT packet (at most the endpoint's max packet size; may be empty).
    pub fn out(&self, addr: u8, packet: &[u8]) -> Result<(), Handshake> {
        let mut s = lock(&self.state);
        let ep = s.ep(addr & 0x0F).ok_or(Handshake::NoEndpoint)?;
        assert!(
            packet.len() <= usize::from(ep.max_packet),
            "host bug: OUT packet of {} bytes on an endpoint of {}",
            packet.len(),
            ep.max_packet
        );
        if ep.stalled {
            return Err(Handshake::Stall);
        }
        if ep.packet.is_some() {
            return Err(Handshake::Nak);
        }
        ep.packet = Some(packet.to_vec());
        Ok(())
    }

    /// Takes the IN packet of an endpoint, if the device wrote one.
    pub fn take_in(&self, addr: u8) -> Result<Vec<u8>, Handshake> {
        let mut s = lock(&self.state);
        let index = addr & 0x0F;
        let ep = s.ep(addr | 0x80).ok_or(Handshake::NoEndpoint)?;
        if ep.stalled {
            return Err(Handshake::Stall);
        }
        let packet = ep.packet.take().ok_or(Handshake::Nak)?;
        s.in_complete |= 1 << index;
        Ok(packet)
    }

    /// Whether the device left an IN packet the host has not taken yet.
    pub fn in_pending(&self, addr: u8) -> bool {
        lock(&self.state)
            .ep(addr | 0x80)
            .is_some_and(|e| e.packet.is_some())
    }

    /// The address the device took (`SET_ADDRESS`).
    pub fn address(&self) -> u8 {
        lock(&self.state).address
    }

    /// Endpoints the device allocated: (address, type, max packet size).
    pub fn endpoints(&self) -> Vec<(u8, EndpointType, u16)> {
        lock(&self.state)
            .eps
            .iter()
            .map(|e| (e.addr, e.ty, e.max_packet))
            .collect()
    }
}
