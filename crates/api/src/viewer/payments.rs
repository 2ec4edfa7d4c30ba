//! Payment providers behind subscriptions.
//!
//! [`PaymentProvider`] is the whole contract: turn card details into a reusable payment method
//! (tokenisation happens at the provider; Lunora stores only the provider's method id and what
//! may be shown, e.g. `card •••• 4242`) and charge a method. The built-in [`TestProvider`]
//! (`test`) needs no network and behaves like the providers' test modes:
//!
//! | card number | checkout | renewals |
//! | --- | --- | --- |
//! | `4242 4242 4242 4242` | succeeds | succeed |
//! | `4000 0000 0000 0341` | succeeds (the first charge) | declined (every later charge) |
//! | `4000 0000 0000 0002` | declined (`card_declined`) | — |
//! | anything else | `invalid_card` | — |
//!
//! **Integration points for real providers** (not shipped): a Stripe adapter maps `attach` to
//! `POST /v1/payment_methods` (from Stripe Elements on the page, so card numbers never reach
//! Lunora) and `charge` to `POST /v1/payment_intents` with `confirm=true, off_session=true`;
//! a PayPal adapter maps them to vault setup tokens and `POST /v2/checkout/orders`. Their
//! secrets come from the secret store like stream keys; webhooks (charge refunded, dispute)
//! would call the same status transitions as a failed renewal.

use std::future::Future;
use std::pin::Pin;

/// A payment method kept at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentMethod {
    /// The provider's id for it, used for renewals.
    pub id: String,
    /// Safe to show: brand and last four digits.
    pub display: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentError {
    /// The card number is not one the provider accepts.
    InvalidCard(String),
    /// The issuer refused the charge.
    Declined(String),
    /// The provider could not be reached or answered an error.
    Unavailable(String),
}

impl std::fmt::Display for PaymentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PaymentError::InvalidCard(m) => write!(f, "invalid card: {m}"),
            PaymentError::Declined(m) => write!(f, "declined: {m}"),
            PaymentError::Unavailable(m) => write!(f, "payment provider unavailable: {m}"),
        }
    }
}

impl std::error::Error for PaymentError {}

pub type PaymentFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, PaymentError>> + Send + 'a>>;

/// A payment provider. Implementations must be cheap to share between requests.
pub trait PaymentProvider: Send + Sync {
    /// Stored with every subscription: `test`, `stripe`, …
    fn name(&self) -> &'static str;
    /// Makes a reusable payment method from card details.
    fn attach<'a>(&'a self, card_number: &'a str) -> PaymentFuture<'a, PaymentMethod>;
    /// Charges `amount_cents` to a method; answers the provider's charge reference.
    fn charge<'a>(
        &'a self,
        method_id: &'a str,
        amount_cents: i64,
        description: &'a str,
    ) -> PaymentFuture<'a, String>;
}

/// The local test provider (see the module documentation for its cards). It keeps which
/// `4000 0000 0000 0341` methods were charged once in memory.
#[derive(Debug, Default)]
pub struct TestProvider {
    charged_once: parking_lot::Mutex<std::collections::HashSet<String>>,
}

impl PaymentProvider for TestProvider {
    fn name(&self) -> &'static str {
        "test"
    }

    fn attach<'a>(&'a self, card_number: &'a str) -> PaymentFuture<'a, PaymentMethod> {
        Box::pin(async move {
            let digits: String = card_number
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .collect();
            if digits.len() != 16 || !digits.chars().all(|c| c.is_ascii_digit()) {
                return Err(PaymentError::InvalidCard(
                    "a card number has 16 digits".into(),
                ));
            }
            let last4 = &digits[12..];
            let behaviour = match digits.as_str() {
                "4242424242424242" => "ok",
                "4000000000000341" => "renewfail",
                "4000000000000002" => {
                    return Err(PaymentError::Declined(
                        "the card was declined (test card 4000 0000 0000 0002)".into(),
                    ))
                }
                _ => {
                    return Err(PaymentError::InvalidCard(
                        "the test provider accepts 4242 4242 4242 4242, 4000 0000 0000 0341 \
                         and 4000 0000 0000 0002"
                            .into(),
                    ))
                }
            };
            let nonce: String = lunora_store::crypto::random_secret("")
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(10)
                .collect();
            Ok(PaymentMethod {
                id: format!("pm_test_{behaviour}_{last4}_{nonce}"),
                display: format!("card •••• {last4}"),
            })
        })
    }

    fn charge<'a>(
        &'a self,
        method_id: &'a str,
        amount_cents: i64,
        _description: &'a str,
    ) -> PaymentFuture<'a, String> {
        Box::pin(async move {
            if method_id.starts_with("pm_test_ok_") {
                Ok(format!(
                    "ch_test_{}_{amount_cents}",
                    lunora_store::crypto::random_secret("")
                        .chars()
                        .take(12)
                        .collect::<String>()
                ))
            } else if method_id.starts_with("pm_test_renewfail_")
                && self.charged_once.lock().insert(method_id.to_string())
            {
                Ok(format!("ch_test_first_{amount_cents}"))
            } else if method_id.starts_with("pm_test_renewfail_") {
                Err(PaymentError::Declined(
                    "the card was declined (test card 4000 0000 0000 0341)".into(),
                ))
            } else {
                Err(PaymentError::InvalidCard("unknown payment method".into()))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn test_cards_behave_like_the_table_says() {
        let p = TestProvider::default();
        let ok = p
            .attach("4242 4242 4242 4242")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok.display, "card •••• 4242");
        assert!(p.charge(&ok.id, 999, "x").await.is_ok());
        let later = p
            .attach("4000000000000341")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(p.charge(&later.id, 999, "x").await.is_ok());
        assert!(matches!(
            p.charge(&later.id, 999, "x").await,
            Err(PaymentError::Declined(_))
        ));
        assert!(matches!(
            p.attach("4000000000000002").await,
            Err(PaymentError::Declined(_))
        ));
        assert!(matches!(
            p.attach("1234").await,
            Err(PaymentError::InvalidCard(_))
        ));
    }
}
