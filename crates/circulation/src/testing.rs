//! Helpers for tests of this crate and of its users (the `testing` feature, enabled from
//! dev-dependencies only): the RabbitMQ under test, and a test's own exchanges and queues,
//! deleted afterwards.

use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::{Connection, ConnectionProperties};

use crate::config::BusConfig;

/// `TEST_AMQP_URL`, when set (see [`test_support::external_url`]).
pub fn amqp_url() -> Option<String> {
    test_support::external_url("TEST_AMQP_URL")
}

/// A test's RabbitMQ exchanges and queues (those `config` names, on the broker at `url`),
/// deleted when this is dropped — also after a failed assertion.
pub struct TestTopology {
    pub url: String,
    pub config: BusConfig,
}

impl Drop for TestTopology {
    fn drop(&mut self) {
        let (url, config) = (self.url.clone(), self.config.clone());
        test_support::clean_up_on_own_thread(async move {
            let Ok(conn) = Connection::connect(&url, ConnectionProperties::default()).await else {
                return;
            };
            let Ok(ch) = conn.create_channel().await else {
                return;
            };
            for q in [config.commands_queue(), config.dead_queue()] {
                let _ = ch
                    .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                    .await;
            }
            for x in [config.exchange(), config.dead_letter_exchange()] {
                let _ = ch
                    .exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
                    .await;
            }
            let _ = conn.close(200, "bye".into()).await;
        });
    }
}
