//! The sandbox side of the network door: init binds the door's listening sockets inside the
//! sandbox's network namespace (it can still bind port 53 then) and hands them to the
//! supervisor, which serves them from outside. No bridge process runs inside.

use crate::control::{self, Msg};
use crate::error::{Context, SetupError};
use crate::spec::{DoorSocket, Spec, DNS_PORT, HTTP_PROXY_PORT, SOCKS_PORT, TRANSPARENT_PORT};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{BorrowedFd, OwnedFd};

const LOOPBACKS: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::LOCALHOST),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
];

fn tcp(ip: IpAddr, port: u16) -> Result<OwnedFd, SetupError> {
    TcpListener::bind(SocketAddr::new(ip, port))
        .map(OwnedFd::from)
        .ctx(|| format!("listen on {ip}:{port} inside the sandbox"))
}

fn udp(ip: IpAddr, port: u16) -> Result<OwnedFd, SetupError> {
    UdpSocket::bind(SocketAddr::new(ip, port))
        .map(OwnedFd::from)
        .ctx(|| format!("listen on {ip}:{port}/udp inside the sandbox"))
}

pub fn bind_and_send(spec: &Spec, sock: BorrowedFd<'_>) -> Result<(), SetupError> {
    let send = |kind: DoorSocket, fd: OwnedFd| {
        control::send(sock, &Msg::Socket(kind, fd)).ctx(|| "hand over the network door".into())
    };
    for ip in LOOPBACKS {
        send(DoorSocket::Http, tcp(ip, HTTP_PROXY_PORT)?)?;
        send(DoorSocket::Socks, tcp(ip, SOCKS_PORT)?)?;
        send(DoorSocket::Transparent, tcp(ip, TRANSPARENT_PORT)?)?;
        send(DoorSocket::DnsUdp, udp(ip, DNS_PORT)?)?;
        send(DoorSocket::DnsTcp, tcp(ip, DNS_PORT)?)?;
    }
    for port in &spec.host_ports {
        send(
            DoorSocket::HostPort,
            tcp(IpAddr::V4(Ipv4Addr::LOCALHOST), *port)?,
        )?;
    }
    Ok(())
}
