//! A tiny SMTP server for the tests: it records every message it accepts, and can be switched
//! to refuse (`421`, "try again later") to play a mail server that is down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A message as the sink received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    /// The message's text (headers and body), as sent after `DATA`.
    pub data: String,
}

/// The server; stops when dropped.
pub struct SmtpSink {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    refusing: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let refusing = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (received, refusing) = (received.clone(), refusing.clone());
            async move {
                while let Ok((socket, _)) = listener.accept().await {
                    let (received, refusing) = (received.clone(), refusing.clone());
                    tokio::spawn(async move {
                        let _ = session(socket, received, refusing).await;
                    });
                }
            }
        });
        Self {
            port,
            received,
            refusing,
            task,
        }
    }

    /// `smtp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Refuses every connection (true) or accepts messages again (false).
    pub fn refuse(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One client's conversation.
async fn session(
    socket: TcpStream,
    received: Arc<Mutex<Vec<Received>>>,
    refusing: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let (reader, mut writer) = socket.into_split();
    let mut lines = BufReader::new(reader);
    if refusing.load(Ordering::SeqCst) {
        writer
            .write_all(b"421 4.3.2 Service not available, try again later\r\n")
            .await?;
        return Ok(());
    }
    writer.write_all(b"220 sink ESMTP ready\r\n").await?;
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        if command.starts_with("EHLO") || command.starts_with("HELO") {
            writer.write_all(b"250 sink\r\n").await?;
        } else if command.starts_with("MAIL FROM") {
            to.clear();
            writer.write_all(b"250 OK\r\n").await?;
        } else if command.starts_with("RCPT TO") {
            let address = line.trim_end()[8..]
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned();
            to.push(address);
            writer.write_all(b"250 OK\r\n").await?;
        } else if command == "DATA" {
            writer
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(&line);
            }
            received.lock().unwrap().push(Received {
                to: std::mem::take(&mut to),
                data,
            });
            writer.write_all(b"250 OK queued\r\n").await?;
        } else if command == "QUIT" {
            writer.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            // RSET, NOOP, …
            writer.write_all(b"250 OK\r\n").await?;
        }
    }
}
