//! The DNS stub's answers. It never forwards anything: allowed names get
//! synthetic addresses, everything else an immediate refusal.

use crate::event::Decided;
use crate::host::{parse_host, Host};
use crate::policy::NetPolicy;
use crate::synth::Synth;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};

/// TTL of synthetic answers, in seconds.
pub const TTL: u32 = 30;
/// The largest DNS message accepted (over TCP; UDP is smaller anyway).
pub const MAX_MESSAGE: usize = 4096;

/// The stub's response to one query, and what to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The response bytes; `None` means drop silently (not even a header).
    pub response: Option<Vec<u8>>,
    /// The queried name (empty if unparseable).
    pub name: String,
    /// The query type, e.g. `A`.
    pub qtype: String,
    /// `Answered`, `Nodata`, `Nxdomain`, `Refused`, `Notimp`, `Formerr` or `Servfail`.
    pub decision: crate::event::Decided,
}

fn error(id: u16, code: ResponseCode, query: Option<&Query>, rd: bool) -> Option<Vec<u8>> {
    let mut m = Message::error_msg(id, OpCode::Query, code);
    m.set_recursion_desired(rd).set_recursion_available(true);
    if let Some(q) = query {
        m.add_query(q.clone());
    }
    m.to_vec().ok()
}

/// Answers one DNS message.
pub fn respond(packet: &[u8], policy: &NetPolicy, synth: &Synth) -> Answer {
    let mut out = Answer {
        response: None,
        name: String::new(),
        qtype: String::new(),
        decision: Decided::Formerr,
    };
    if packet.len() < 12 || packet.len() > MAX_MESSAGE {
        return out;
    }
    let id = u16::from_be_bytes([packet[0], packet[1]]);
    // QR set: a response sent to us; never answer it (no reflection loops).
    if packet[2] & 0x80 != 0 {
        return out;
    }
    let msg = match Message::from_vec(packet) {
        Ok(m) => m,
        Err(_) => {
            out.response = error(id, ResponseCode::FormErr, None, false);
            return out;
        }
    };
    let rd = msg.recursion_desired();
    if msg.message_type() != MessageType::Query || msg.op_code() != OpCode::Query {
        out.decision = Decided::Notimp;
        out.response = error(id, ResponseCode::NotImp, None, rd);
        return out;
    }
    let [q] = msg.queries() else {
        out.response = error(id, ResponseCode::FormErr, None, rd);
        return out;
    };
    out.name = q.name().to_ascii().to_ascii_lowercase();
    out.qtype = q.query_type().to_string();
    if q.query_class() != DNSClass::IN {
        out.decision = Decided::Refused;
        out.response = error(id, ResponseCode::Refused, Some(q), rd);
        return out;
    }
    let name = match parse_host(&out.name) {
        Ok(Host::Name(n)) if policy.name_may_resolve(&n) => n,
        _ => {
            out.decision = Decided::Nxdomain;
            out.response = error(id, ResponseCode::NXDomain, Some(q), rd);
            return out;
        }
    };
    let Some((v4, v6)) = synth.assign(&name) else {
        out.decision = Decided::Servfail;
        out.response = error(id, ResponseCode::ServFail, Some(q), rd);
        return out;
    };
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_authoritative(true)
        .set_recursion_desired(rd)
        .set_recursion_available(true)
        .set_response_code(ResponseCode::NoError)
        .add_query(q.clone());
    let owner = q.name().clone();
    match q.query_type() {
        RecordType::A => {
            m.add_answer(Record::from_rdata(owner, TTL, RData::A(A(v4))));
            out.decision = Decided::Answered;
        }
        RecordType::AAAA => {
            m.add_answer(Record::from_rdata(owner, TTL, RData::AAAA(AAAA(v6))));
            out.decision = Decided::Answered;
        }
        _ => out.decision = Decided::Nodata,
    }
    out.response = m.to_vec().ok();
    if out.response.is_none() {
        out.decision = Decided::Servfail;
        out.response = error(id, ResponseCode::ServFail, None, rd);
    }
    out
}

#[cfg(test)]
mod tests;
