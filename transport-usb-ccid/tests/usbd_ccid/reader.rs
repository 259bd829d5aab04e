//! The device under test assembled: `usb-device` + `usbd-ccid` on the fake bus, `apdu-dispatch`
//! behind usbd-ccid's interchange, the [`CardApp`] behind the dispatch; and the host's side of
//! EP0 (control transfers, enumeration) and of the bulk endpoints, one packet at a time.
//!
//! Everything runs on the test's thread: [`Reader::tick`] is one turn of a firmware main loop
//! (USB poll, app poll, "check for app response").

use std::cell::RefCell;
use std::rc::Rc;

use apdu_dispatch::dispatch::ApduDispatch;
use apdu_dispatch::interchanges::Channel;
use usb_device::bus::UsbBusAllocator;
use usb_device::device::{
    StringDescriptors, UsbDevice, UsbDeviceBuilder, UsbDeviceState, UsbVidPid,
};
use usb_device::LangID;
use usbd_ccid::Ccid;

use super::card_app::CardApp;
use super::fake_bus::{new_bus, FakeBus, Handshake, HostPort};

/// usbd-ccid's message buffer size, as apdu-dispatch's interchange has it.
pub const N: usize = apdu_dispatch::interchanges::SIZE;

/// Device-loop turns a host waits for a packet before it gives up (the device is deterministic:
/// an answer that did not come in this many turns will not come).
pub const MAX_TICKS: usize = 200;

/// One entry of the bulk trace (APDU data of VERIFY / CHANGE REFERENCE DATA / RESET RETRY
/// COUNTER is redacted before it gets here).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trace {
    /// An OUT transfer (one CCID message as the host wrote it), possibly redacted.
    Out(Vec<u8>),
    /// A zero-length OUT packet.
    OutZlp,
    /// An IN transfer as the host received it (packets up to a short one).
    In(Vec<u8>),
}

/// What enumeration learned from the device's own descriptors.
#[derive(Clone, Debug)]
pub struct Enumerated {
    /// The 18-byte device descriptor.
    pub device: Vec<u8>,
    /// The whole configuration descriptor set.
    pub config: Vec<u8>,
    /// The CCID class descriptor (type 0x21) with its 2-byte header, as the device sent it.
    pub ccid_class: Vec<u8>,
    /// The interface number of the CCID interface.
    pub interface: u8,
    /// Bulk OUT endpoint address.
    pub bulk_out: u8,
    /// Bulk IN endpoint address.
    pub bulk_in: u8,
    /// Bulk max packet size (both directions).
    pub bulk_mps: usize,
    /// Interrupt IN endpoint, if the device declares one.
    pub interrupt_in: Option<u8>,
}

/// The reader: device side and host port.
pub struct Reader {
    /// The host controller's port.
    pub host: HostPort,
    usb: UsbDevice<'static, FakeBus>,
    ccid: Ccid<'static, 'static, FakeBus, N>,
    dispatch: ApduDispatch<'static>,
    /// The card app.
    pub app: CardApp,
    /// While set, the app does not run (a command stays "processing" in usbd-ccid).
    pub hold_app: bool,
    wtx_per_command: u32,
    wtx_left: u32,
    /// Time extensions usbd-ccid sent so far.
    pub wtx_sent: u32,
    /// EP0 max packet size (learned in enumeration; 8 until then).
    pub ep0_mps: usize,
    /// What enumeration found.
    pub found: Option<Enumerated>,
    /// Bulk traffic, in order.
    pub trace: Vec<Trace>,
    /// When set, the device does not run between the host taking a bulk IN packet and the
    /// host's next packet (a device that polls USB late, so that an IN completion and the next
    /// OUT packet are handled in one poll).
    pub late_in_complete: bool,
    /// Virtual milliseconds: one per device-loop turn.
    pub now_ms: Rc<std::cell::Cell<u64>>,
}

fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

impl Reader {
    /// A reader with `card` in its slot, attached to the bus but not yet enumerated.
    pub fn new(card: Rc<RefCell<cardunlock_sim::SimCard>>) -> Self {
        let (bus, host) = new_bus();
        // The USB and interchange objects borrow each other for `'static` in firmware; a test
        // leaks them (a few kilobytes per reader).
        let alloc: &'static UsbBusAllocator<FakeBus> = leak(UsbBusAllocator::new(bus));
        let contact: &'static Channel = leak(Channel::new());
        let contactless: &'static Channel = leak(Channel::new());
        let (requester, responder) = contact.split().expect("fresh channel");
        let (_unused, contactless_responder) = contactless.split().expect("fresh channel");
        let ccid = Ccid::new(alloc, requester, None);
        let usb = UsbDeviceBuilder::new(alloc, UsbVidPid(0x1209, 0xCC1D))
            .strings(&[StringDescriptors::new(LangID::EN_US)
                .manufacturer("cardunlock tests")
                .product("usbd-ccid peer")
                .serial_number("0001")])
            .expect("strings")
            .max_packet_size_0(64)
            .expect("ep0 size")
            .build();
        let dispatch = ApduDispatch::new(responder, contactless_responder);
        Self {
            host,
            usb,
            ccid,
            dispatch,
            app: CardApp::new(card),
            hold_app: false,
            wtx_per_command: 0,
            wtx_left: 0,
            wtx_sent: 0,
            ep0_mps: 8,
            found: None,
            trace: Vec::new(),
            late_in_complete: false,
            now_ms: Rc::new(std::cell::Cell::new(0)),
        }
    }

    /// usbd-ccid sends `n` time extensions for every command before the app answers it.
    pub fn set_wtx_per_command(&mut self, n: u32) {
        self.wtx_per_command = n;
        self.wtx_left = n;
    }

    /// The USB device state (`Configured` after enumeration).
    pub fn usb_state(&self) -> UsbDeviceState {
        self.usb.state()
    }

    /// One USB poll only (packets that arrive back to back within one transfer).
    pub fn tick_usb(&mut self) {
        self.usb.poll(&mut [&mut self.ccid]);
    }

    /// One turn of the firmware main loop: USB, then the app, then usbd-ccid picks up the
    /// app's response.
    pub fn tick(&mut self) {
        self.now_ms.set(self.now_ms.get() + 1);
        self.tick_usb();
        self.run_app();
        self.ccid.check_for_app_response();
    }

    fn run_app(&mut self) {
        if self.hold_app {
            return;
        }
        let bulk_in = self.found.as_ref().map_or(0x81, |f| f.bulk_in);
        if self.wtx_left > 0 && !self.host.in_pending(bulk_in) {
            // Only sends (and answers true) while a command is being processed.
            if matches!(
                self.ccid.send_wait_extension(),
                usbd_ccid::Status::ReceivedData(_)
            ) {
                self.wtx_left -= 1;
                self.wtx_sent += 1;
                return;
            }
        }
        if self.dispatch.poll(&mut [&mut self.app]).is_some() {
            self.wtx_left = self.wtx_per_command;
        }
    }

    // ---- EP0 -----------------------------------------------------------------------------

    /// A control transfer with an IN data stage: SETUP, IN packets until a short one or
    /// `wLength` bytes, then the OUT status stage.
    pub fn control_in(&mut self, setup: [u8; 8]) -> Result<Vec<u8>, Handshake> {
        let w_length = usize::from(u16::from_le_bytes([setup[6], setup[7]]));
        self.host.setup(setup);
        let mut data = Vec::new();
        let mut ticks = 0;
        loop {
            self.tick();
            match self.host.take_in(0x80) {
                Ok(packet) => {
                    let short = packet.len() < self.ep0_mps;
                    data.extend_from_slice(&packet);
                    if short || data.len() >= w_length {
                        break;
                    }
                }
                Err(Handshake::Nak) if ticks < MAX_TICKS => ticks += 1,
                Err(e) => return Err(e),
            }
        }
        // Status stage: a zero-length OUT.
        self.out_with_retry(0x00, &[], false)?;
        self.tick();
        Ok(data)
    }

    /// A control transfer with an OUT data stage (or none): SETUP, OUT packets, then the IN
    /// status stage (a zero-length IN packet from the device).
    pub fn control_out(&mut self, setup: [u8; 8], data: &[u8]) -> Result<(), Handshake> {
        self.host.setup(setup);
        self.tick();
        for chunk in data.chunks(self.ep0_mps) {
            self.out_with_retry(0x00, chunk, false)?;
        }
        let mut ticks = 0;
        loop {
            self.tick();
            match self.host.take_in(0x80) {
                Ok(packet) if packet.is_empty() => break,
                Ok(packet) => panic!("status stage of a control OUT carried data: {packet:02X?}"),
                Err(Handshake::Nak) if ticks < MAX_TICKS => ticks += 1,
                Err(e) => return Err(e),
            }
        }
        // The device sees its status packet taken (SET_ADDRESS takes effect here).
        self.tick();
        Ok(())
    }

    /// Enumerates the device as a host does: device descriptor (first 8 bytes to learn the EP0
    /// packet size), SET_ADDRESS, the full device and configuration descriptors,
    /// SET_CONFIGURATION 1; and finds the CCID interface, its class descriptor and endpoints.
    pub fn enumerate(&mut self) -> Enumerated {
        // Bus reset.
        self.tick();
        let head = self
            .control_in(get_descriptor(1, 0, 8))
            .expect("GET_DESCRIPTOR device (8)");
        assert_eq!(head.len(), 8);
        assert_eq!(head[1], 1, "descriptor type");
        self.ep0_mps = usize::from(head[7]);
        self.control_out(setup(0x00, 5, 7, 0, 0), &[])
            .expect("SET_ADDRESS");
        assert_eq!(self.host.address(), 7, "device took the address");
        assert_eq!(self.usb.state(), UsbDeviceState::Addressed);
        let device = self
            .control_in(get_descriptor(1, 0, 18))
            .expect("GET_DESCRIPTOR device");
        assert_eq!(device.len(), 18);
        let config_head = self
            .control_in(get_descriptor(2, 0, 9))
            .expect("GET_DESCRIPTOR configuration (9)");
        let total = u16::from_le_bytes([config_head[2], config_head[3]]);
        let config = self
            .control_in(get_descriptor(2, 0, total))
            .expect("GET_DESCRIPTOR configuration");
        assert_eq!(config.len(), usize::from(total));
        self.control_out(setup(0x00, 9, 1, 0, 0), &[])
            .expect("SET_CONFIGURATION");
        assert_eq!(self.usb.state(), UsbDeviceState::Configured);
        let found = parse_config(&device, &config);
        self.found = Some(found.clone());
        found
    }

    // ---- bulk ------------------------------------------------------------------------------

    fn out_with_retry(&mut self, ep: u8, packet: &[u8], usb_only: bool) -> Result<(), Handshake> {
        for _ in 0..MAX_TICKS {
            match self.host.out(ep, packet) {
                Err(Handshake::Nak) => {
                    if usb_only {
                        self.tick_usb();
                    } else {
                        self.tick();
                    }
                }
                other => return other,
            }
        }
        Err(Handshake::Nak)
    }

    /// Sends one bulk OUT transfer: `message` in max-packet-size packets, back to back (only
    /// the USB side of the device runs between them, as on a real bus), and a zero-length
    /// packet after a message whose length is a multiple of the packet size if `zlp`.
    /// `trace_as` is what the trace records (the caller redacts secrets).
    pub fn bulk_out(
        &mut self,
        message: &[u8],
        zlp: bool,
        trace_as: Vec<u8>,
    ) -> Result<(), Handshake> {
        let found = self.found.clone().expect("enumerated");
        self.trace.push(Trace::Out(trace_as));
        for chunk in message.chunks(found.bulk_mps) {
            self.out_with_retry(found.bulk_out, chunk, true)?;
        }
        if zlp && (message.is_empty() || message.len() % found.bulk_mps == 0) {
            self.out_with_retry(found.bulk_out, &[], true)?;
            self.trace.push(Trace::OutZlp);
        }
        // The device takes the last packet in.
        self.tick_usb();
        Ok(())
    }

    /// Receives one bulk IN transfer of at most `max_len` bytes (a multiple of the packet
    /// size): packets until a short one (a zero-length one included) or `max_len`. `Ok(None)`
    /// if the device sent nothing within [`MAX_TICKS`] turns.
    pub fn bulk_in(&mut self, max_len: usize) -> Result<Option<Vec<u8>>, Handshake> {
        let found = self.found.clone().expect("enumerated");
        let mut data = Vec::new();
        let mut idle = 0;
        loop {
            match self.host.take_in(found.bulk_in) {
                Ok(packet) => {
                    idle = 0;
                    if !self.late_in_complete {
                        // The device handles the IN completion before the host's next token.
                        self.tick_usb();
                    }
                    data.extend_from_slice(&packet);
                    if packet.len() < found.bulk_mps || data.len() >= max_len {
                        break;
                    }
                }
                Err(Handshake::Nak) => {
                    if idle >= MAX_TICKS {
                        if data.is_empty() {
                            return Ok(None);
                        }
                        break;
                    }
                    idle += 1;
                    self.tick();
                }
                Err(e) => return Err(e),
            }
        }
        self.trace.push(Trace::In(data.clone()));
        Ok(Some(data))
    }

    /// The CCID ABORT class request on EP0 (bmRequestType 0x21, bRequest 1,
    /// wValue = bSeq << 8 | bSlot, wIndex = the interface).
    pub fn control_abort(&mut self, slot: u8, seq: u8) -> Result<(), Handshake> {
        let interface = self.found.as_ref().map_or(0, |f| f.interface);
        self.control_out(
            setup(
                0x21,
                1,
                u16::from_le_bytes([slot, seq]),
                u16::from(interface),
                0,
            ),
            &[],
        )
    }
}

/// A SETUP packet.
pub fn setup(request_type: u8, request: u8, value: u16, index: u16, length: u16) -> [u8; 8] {
    let [v0, v1] = value.to_le_bytes();
    let [i0, i1] = index.to_le_bytes();
    let [l0, l1] = length.to_le_bytes();
    [request_type, request, v0, v1, i0, i1, l0, l1]
}

/// GET_DESCRIPTOR (standard, device recipient).
pub fn get_descriptor(kind: u8, index: u8, length: u16) -> [u8; 8] {
    setup(0x80, 6, u16::from_le_bytes([index, kind]), 0, length)
}

/// Walks a configuration descriptor set: the CCID interface (class 0x0B), its class descriptor
/// and its endpoints.
fn parse_config(device: &[u8], config: &[u8]) -> Enumerated {
    let mut at = 0;
    let mut in_ccid = false;
    let mut interface = None;
    let mut ccid_class = None;
    let (mut bulk_in, mut bulk_out, mut interrupt_in, mut bulk_mps) = (None, None, None, 0);
    while at + 2 <= config.len() {
        let len = usize::from(config[at]);
        assert!(
            len >= 2 && at + len <= config.len(),
            "descriptor walk at {at}"
        );
        let d = &config[at..at + len];
        match d[1] {
            4 => {
                in_ccid = d[5] == 0x0B;
                if in_ccid {
                    interface = Some(d[2]);
                }
            }
            0x21 if in_ccid => ccid_class = Some(d.to_vec()),
            5 if in_ccid => {
                let addr = d[2];
                let mps = usize::from(u16::from_le_bytes([d[4], d[5]]));
                match (d[3] & 3, addr & 0x80 != 0) {
                    (2, true) => {
                        bulk_in = Some(addr);
                        bulk_mps = mps;
                    }
                    (2, false) => bulk_out = Some(addr),
                    (3, true) => interrupt_in = Some(addr),
                    _ => {}
                }
            }
            _ => {}
        }
        at += len;
    }
    Enumerated {
        device: device.to_vec(),
        config: config.to_vec(),
        ccid_class: ccid_class.expect("a CCID class descriptor (type 0x21)"),
        interface: interface.expect("a CCID interface (class 0x0B)"),
        bulk_out: bulk_out.expect("a bulk OUT endpoint"),
        bulk_in: bulk_in.expect("a bulk IN endpoint"),
        bulk_mps,
        interrupt_in,
    }
}
