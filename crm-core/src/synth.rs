//! A seeded generator of realistic synthetic CRM data, for demos, tests and
//! benchmarks.
//!
//! The same seed gives the same data on every machine. Organizations and
//! people with names, emails and valid phone numbers across several
//! countries; tags, typed attributes and lifecycle stages; and for each
//! person a few years of interactions. Purchases follow a
//! buy-till-you-die process (each customer buys at their own rate until they
//! silently drop out), so the analytics models have something real to find;
//! amounts are skewed, products follow a long tail.
//!
//! ```
//! use crm_core::{Crm, synth::{SynthConfig, populate}};
//! let crm = Crm::open_in_memory()?;
//! let config = SynthConfig { customers: 200, ..SynthConfig::default() };
//! let summary = populate(&crm, &config, None)?;
//! assert_eq!(crm.count_customers()?, 200);
//! assert_eq!(crm.count_interactions()?, summary.interactions);
//! # Ok::<(), crm_core::Error>(())
//! ```

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};

use crate::crm::Crm;
use crate::error::Result;
use crate::import::{ImportOptions, ImportProgress};
use crate::model::consent::{ConsentStatus, NewConsent};
use crate::model::customer::{AttributeValue, CustomerKind, NewCustomer};
use crate::model::ids::CustomerId;
use crate::model::interaction::{CustomerRef, Direction, InteractionKind, NewInteraction};

/// What to generate.
#[derive(Clone, Debug)]
pub struct SynthConfig {
    /// The seed; the same seed gives the same data.
    pub seed: u64,
    /// Customers in all, organizations included (about 1 in 20 is one).
    pub customers: u64,
    /// Average interactions per person (purchases included).
    pub interactions_per_customer: f64,
    /// How many years of history end at `end`.
    pub years: u32,
    /// The end of the generated history.
    pub end: DateTime<Utc>,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 42,
            customers: 1_000,
            interactions_per_customer: 10.0,
            years: 3,
            end: Utc
                .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .unwrap_or_else(Utc::now),
        }
    }
}

const FIRST_NAMES: &[&str] = &[
    "Ana", "Maja", "Luka", "Nik", "Eva", "Jan", "Sara", "Marko", "Nina", "Tim", "Emma", "Liam",
    "Olivia", "Noah", "Sofia", "Mateo", "Léa", "Lukas", "Marie", "Jonas", "Giulia", "Marco",
    "Lucía", "Hugo", "Zoë", "Aiden", "Mia", "Elias", "Chloé", "Ivan", "Petra", "Tomaž", "Špela",
    "Žiga", "Hana", "Oskar",
];
const LAST_NAMES: &[&str] = &[
    "Novak",
    "Horvat",
    "Kovačič",
    "Krajnc",
    "Zupančič",
    "Potočnik",
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Rossi",
    "Russo",
    "Ferrari",
    "García",
    "Martínez",
    "Dubois",
    "Moreau",
    "Laurent",
    "Jones",
    "Taylor",
    "Wilson",
    "Kos",
    "Golob",
    "Vidmar",
    "Bizjak",
];
const ORG_WORDS: &[&str] = &[
    "Alpine", "Blue", "Cedar", "Delta", "Echo", "Fjord", "Granite", "Harbor", "Iris", "Juniper",
    "Kestrel", "Lumen", "Meridian", "Nova", "Orbit", "Pine", "Quartz", "River", "Summit", "Tidal",
];
const ORG_SUFFIXES: &[&str] = &[
    "d.o.o.", "GmbH", "Ltd", "Inc.", "S.r.l.", "SAS", "Labs", "Group",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "example.net",
    "mail.example",
    "post.example",
];
/// (country, locale, weight)
const COUNTRIES: &[(&str, &str, u32)] = &[
    ("SI", "sl-SI", 30),
    ("DE", "de-DE", 20),
    ("AT", "de-AT", 8),
    ("IT", "it-IT", 10),
    ("US", "en-US", 17),
    ("GB", "en-GB", 10),
    ("FR", "fr-FR", 5),
];
const TAGS: &[(&str, f64)] = &[
    ("newsletter", 0.45),
    ("vip", 0.05),
    ("b2b", 0.15),
    ("webinar", 0.10),
    ("trade-fair", 0.05),
    ("referral", 0.08),
];
const STAGES: &[(&str, u32)] = &[
    ("subscriber", 25),
    ("lead", 25),
    ("mql", 12),
    ("sql", 8),
    ("opportunity", 5),
    ("customer", 20),
    ("evangelist", 2),
    ("churned", 3),
];
const SUBJECTS: &[&str] = &[
    "Welcome to our store",
    "Your order has shipped",
    "Question about invoice",
    "Spring collection preview",
    "Delivery delayed",
    "Product demo follow-up",
    "Renewal reminder",
    "Request for a quote",
    "Password reset",
    "Thank you for your feedback",
    "Warranty claim",
    "Meeting about the annual contract",
];

fn pick<'a, T>(rng: &mut fastrand::Rng, items: &'a [T]) -> &'a T {
    &items[rng.usize(..items.len())]
}

fn weighted<'a, T>(rng: &mut fastrand::Rng, items: &'a [(T, u32)]) -> &'a T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.u32(..total);
    for (item, w) in items {
        if x < *w {
            return item;
        }
        x -= w;
    }
    &items[items.len() - 1].0
}

/// Exponential variate with mean `mean`.
fn exponential(rng: &mut fastrand::Rng, mean: f64) -> f64 {
    -mean * (1.0 - rng.f64()).ln()
}

/// A phone number that is valid in `country`, in E.164. Number plans have
/// holes, so a candidate is checked and redrawn (deterministically).
fn phone(rng: &mut fastrand::Rng, country: &str) -> String {
    let mut candidate = phone_candidate(rng, country);
    for _ in 0..20 {
        if crate::model::normalize::phone(&candidate, None).is_ok() {
            break;
        }
        candidate = phone_candidate(rng, country);
    }
    candidate
}

fn phone_candidate(rng: &mut fastrand::Rng, country: &str) -> String {
    match country {
        "SI" => format!(
            "+386{}{:06}",
            pick(rng, &["40", "41", "51", "31"]),
            rng.u32(..1_000_000)
        ),
        "DE" | "AT" => format!(
            "+49{}{:08}",
            pick(rng, &["151", "176"]),
            rng.u32(..100_000_000)
        ),
        "IT" => format!(
            "+39{}{:07}",
            pick(rng, &["320", "333", "347", "380"]),
            rng.u32(..10_000_000)
        ),
        "GB" => format!(
            "+447{}{:08}",
            pick(rng, &["4", "5", "8", "9"]),
            rng.u32(..100_000_000)
        ),
        "FR" => format!("+33{}{:08}", pick(rng, &["6", "7"]), rng.u32(..100_000_000)),
        _ => format!(
            "+1{}{}{:04}",
            pick(rng, &["212", "415", "617", "312", "713", "206"]),
            rng.u32(200..999),
            rng.u32(..10_000)
        ),
    }
}

fn ascii_fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'č' | 'ć' => 'c',
            'š' => 's',
            'ž' => 'z',
            'é' | 'è' | 'ë' => 'e',
            'á' | 'à' => 'a',
            'í' => 'i',
            'ó' | 'ö' => 'o',
            'ü' | 'ú' => 'u',
            'Š' => 's',
            'Ž' => 'z',
            'Č' => 'c',
            other => other.to_ascii_lowercase(),
        })
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// The deterministic generator.
#[derive(Clone, Debug)]
pub struct Generator {
    config: SynthConfig,
}

impl Generator {
    /// A generator for `config`.
    pub fn new(config: SynthConfig) -> Self {
        Generator { config }
    }

    /// How many of the customers are organizations.
    pub fn organization_count(&self) -> u64 {
        self.config.customers / 20
    }

    fn rng(&self, stream: u64, index: u64) -> fastrand::Rng {
        // Each record has its own stream: records don't depend on each other,
        // so any slice of the data can be regenerated alone.
        fastrand::Rng::with_seed(
            self.config
                .seed
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .wrapping_add(stream.wrapping_mul(0xbf58_476d_1ce4_e5b9))
                .wrapping_add(index.wrapping_mul(0x94d0_49bb_1331_11eb)),
        )
    }

    /// The external id of organization `i`.
    pub fn organization_external_id(i: u64) -> String {
        format!("O{i:07}")
    }

    /// The external id of person `i`.
    pub fn person_external_id(i: u64) -> String {
        format!("C{i:08}")
    }

    /// The organizations.
    pub fn organizations(&self) -> impl Iterator<Item = NewCustomer> + '_ {
        (0..self.organization_count()).map(move |i| {
            let mut rng = self.rng(1, i);
            let (country, locale) = {
                let (c, l, _) = COUNTRIES[rng.usize(..COUNTRIES.len())];
                (c, l)
            };
            let name = format!(
                "{} {} {}",
                pick(&mut rng, ORG_WORDS),
                pick(&mut rng, ORG_WORDS),
                pick(&mut rng, ORG_SUFFIXES)
            );
            NewCustomer {
                kind: CustomerKind::Organization,
                external_id: Some(Self::organization_external_id(i)),
                name: Some(name),
                emails: vec![format!("info.{i}@{}", pick(&mut rng, DOMAINS))],
                phones: vec![phone(&mut rng, country)],
                country: Some(country.into()),
                locale: Some(locale.into()),
                tags: vec!["b2b".into()],
                lifecycle_stage: Some((*weighted(&mut rng, STAGES)).into()),
                source: Some("synthetic".into()),
                ..NewCustomer::default()
            }
        })
    }

    /// The number of people.
    pub fn person_count(&self) -> u64 {
        self.config.customers - self.organization_count()
    }

    /// The people; about a third belong to one of `organizations` (the ids of
    /// the stored organizations, in generator order).
    pub fn people<'a>(
        &'a self,
        organizations: &'a [CustomerId],
    ) -> impl Iterator<Item = NewCustomer> + 'a {
        (0..self.person_count()).map(move |i| {
            let mut rng = self.rng(2, i);
            let first = *pick(&mut rng, FIRST_NAMES);
            let last = *pick(&mut rng, LAST_NAMES);
            let country_row = weighted(
                &mut rng,
                &COUNTRIES
                    .iter()
                    .map(|(c, l, w)| ((*c, *l), *w))
                    .collect::<Vec<_>>(),
            )
            .to_owned();
            let (country, locale) = country_row;
            let mut tags: Vec<String> = TAGS
                .iter()
                .filter(|(_, p)| rng.f64() < *p)
                .map(|(t, _)| t.to_string())
                .collect();
            if rng.f64() < 0.02 {
                tags.push("do-not-call".into());
            }
            let mut attributes = std::collections::BTreeMap::new();
            attributes.insert(
                "plan".to_string(),
                AttributeValue::Text(
                    (*weighted(&mut rng, &[("free", 60), ("pro", 30), ("enterprise", 10)])).into(),
                ),
            );
            if rng.f64() < 0.5 {
                attributes.insert(
                    "seats".to_string(),
                    AttributeValue::Number(f64::from(1 + rng.u32(..50))),
                );
            }
            attributes.insert(
                "newsletter_opt_in".to_string(),
                AttributeValue::Bool(rng.bool()),
            );
            if rng.f64() < 0.3 {
                let day = self.config.end.date_naive() + Duration::days(i64::from(rng.u32(..365)));
                attributes.insert("renewal_date".to_string(), AttributeValue::Date(day));
            }
            let organization_id = (!organizations.is_empty() && rng.f64() < 0.33)
                .then(|| organizations[rng.usize(..organizations.len())]);
            let birth_date = (rng.f64() < 0.6)
                .then(|| {
                    NaiveDate::from_ymd_opt(
                        1950 + rng.i32(0..55),
                        1 + rng.u32(..12),
                        1 + rng.u32(..28),
                    )
                })
                .flatten();
            let mut phones = Vec::new();
            if rng.f64() < 0.7 {
                phones.push(phone(&mut rng, country));
            }
            NewCustomer {
                kind: CustomerKind::Person,
                external_id: Some(Self::person_external_id(i)),
                name: None,
                first_name: Some(first.into()),
                last_name: Some(last.into()),
                organization_id,
                emails: vec![format!(
                    "{}.{}.{i}@{}",
                    ascii_fold(first),
                    ascii_fold(last),
                    pick(&mut rng, DOMAINS)
                )],
                phones,
                birth_date,
                locale: Some(locale.into()),
                country: Some(country.into()),
                tags,
                attributes,
                lifecycle_stage: Some((*weighted(&mut rng, STAGES)).into()),
                owner: Some(format!("rep{}", rng.u32(..20))),
                source: Some(
                    (*pick(&mut rng, &["web", "store", "import", "referral", "event"])).into(),
                ),
                ..NewCustomer::default()
            }
        })
    }

    /// The interactions of person `i`, oldest first.
    pub fn interactions_of(&self, i: u64) -> Vec<NewInteraction> {
        let mut rng = self.rng(3, i);
        let end = self.config.end;
        let span_days = f64::from(self.config.years.max(1)) * 365.0;
        // Acquired somewhere in the window; buys at their own rate until they
        // drop out after a purchase with their own probability.
        let born = end - Duration::seconds((rng.f64() * span_days * 86_400.0) as i64);
        let mean_purchases = self.config.interactions_per_customer * 0.4;
        let rate_days = span_days / (mean_purchases.max(0.1) * 1.6);
        let mean_gap = exponential(&mut rng, rate_days) + 3.0;
        let dropout = 0.05 + rng.f64() * 0.25;
        let customer = CustomerRef::ExternalId(Self::person_external_id(i));
        let mut out = Vec::new();
        let mut t = born;
        let spend_scale = 1_000.0 + exponential(&mut rng, 4_000.0);
        loop {
            t += Duration::seconds((exponential(&mut rng, mean_gap) * 86_400.0) as i64);
            if t >= end {
                break;
            }
            let product = format!("SKU-{:04}", (rng.f64().powi(3) * 2_000.0) as u32);
            let cents = (spend_scale * (0.5 + exponential(&mut rng, 1.0))).round() as i64;
            out.push(NewInteraction {
                channel: Some((*pick(&mut rng, &["web", "store", "app"])).into()),
                occurred_at: Some(t),
                amount_minor: Some(cents.max(100)),
                currency: Some("EUR".into()),
                product: Some(product),
                quantity: Some(1 + i64::from(rng.u8(..3))),
                ..NewInteraction::new(customer.clone(), InteractionKind::Purchase)
            });
            if rng.f64() < dropout {
                break;
            }
        }
        let others =
            (exponential(&mut rng, self.config.interactions_per_customer * 0.6)).round() as usize;
        let window = (end - born).num_seconds().max(1);
        for _ in 0..others {
            let at = born + Duration::seconds(rng.i64(0..window));
            let kind = weighted(
                &mut rng,
                &[
                    (InteractionKind::Email, 35),
                    (InteractionKind::WebVisit, 30),
                    (InteractionKind::Call, 8),
                    (InteractionKind::Meeting, 4),
                    (InteractionKind::Note, 7),
                    (InteractionKind::Ticket, 8),
                    (InteractionKind::SurveyResponse, 8),
                ],
            )
            .clone();
            let mut new = NewInteraction::new(customer.clone(), kind.clone());
            new.occurred_at = Some(at);
            match kind {
                InteractionKind::Email
                | InteractionKind::Ticket
                | InteractionKind::Meeting
                | InteractionKind::Call => {
                    new.subject = Some((*pick(&mut rng, SUBJECTS)).into());
                    new.direction = Some(if rng.bool() {
                        Direction::Inbound
                    } else {
                        Direction::Outbound
                    });
                    new.channel = Some(
                        match kind {
                            InteractionKind::Call => "phone",
                            InteractionKind::Meeting => "in_person",
                            _ => "email",
                        }
                        .into(),
                    );
                }
                InteractionKind::WebVisit => {
                    new.channel = Some("web".into());
                    new.metadata = Some(
                        serde_json::json!({ "page": format!("/products/{}", rng.u32(..200)) }),
                    );
                }
                InteractionKind::SurveyResponse => {
                    new.channel = Some("email".into());
                    // Skewed high, as real NPS answers are.
                    new.score =
                        Some((10.0 - exponential(&mut rng, 2.0)).clamp(0.0, 10.0).round() as i32);
                }
                _ => new.body = Some("Called about the offer; follow up next week.".into()),
            }
            out.push(new);
        }
        out.sort_by_key(|n| n.occurred_at);
        out
    }

    /// Every person's interactions, person by person.
    pub fn interactions(&self) -> impl Iterator<Item = NewInteraction> + '_ {
        (0..self.person_count()).flat_map(move |i| self.interactions_of(i))
    }

    /// Person `i`'s answers about `email_marketing` (every channel), oldest
    /// first: about half granted it at some time in the history, and one in
    /// five of those withdrew it later; one in ten denied it; the others
    /// never answered.
    pub fn consents_of(&self, i: u64) -> Vec<NewConsent> {
        let mut rng = self.rng(4, i);
        let span = i64::from(self.config.years.max(1)) * 365 * 86_400;
        let start = self.config.end - Duration::seconds(span);
        let answer = |status, second: i64| NewConsent {
            source: Some("synthetic".into()),
            recorded_at: Some(start + Duration::seconds(second)),
            ..NewConsent::new("email_marketing", status)
        };
        let x = rng.f64();
        if x < 0.5 {
            let granted = rng.i64(0..span - 1);
            let mut out = vec![answer(ConsentStatus::Granted, granted)];
            if rng.f64() < 0.2 {
                out.push(answer(ConsentStatus::Withdrawn, rng.i64(granted + 1..span)));
            }
            out
        } else if x < 0.6 {
            vec![answer(ConsentStatus::Denied, rng.i64(0..span))]
        } else {
            Vec::new()
        }
    }
}

/// What [`populate`] stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SynthSummary {
    /// Organizations stored.
    pub organizations: u64,
    /// People stored.
    pub people: u64,
    /// Interactions stored.
    pub interactions: u64,
}

/// A progress callback told which stage (`organizations`, `people`,
/// `interactions`) it is about.
pub type StageProgressFn<'a> = &'a mut dyn FnMut(&str, &ImportProgress);

/// Generates `config`'s data set into `crm` (organizations, people, then
/// interactions), reporting progress of each import.
pub fn populate(
    crm: &Crm,
    config: &SynthConfig,
    mut progress: Option<StageProgressFn<'_>>,
) -> Result<SynthSummary> {
    let generator = Generator::new(config.clone());
    let options = ImportOptions::default();
    let mut report = |stage: &str, p: &ImportProgress| {
        if let Some(f) = progress.as_mut() {
            f(stage, p);
        }
    };
    let organizations = crm.import_customers(
        generator.organizations(),
        &options,
        Some(&mut |p| report("organizations", p)),
    )?;
    let org_ids = (0..generator.organization_count())
        .map(|i| {
            crm.find_customer_by_external_id(&Generator::organization_external_id(i))?
                .map(|c| c.id)
                .ok_or(crate::Error::NotFound { entity: "customer" })
        })
        .collect::<Result<Vec<_>>>()?;
    let people = crm.import_customers(
        generator.people(&org_ids),
        &options,
        Some(&mut |p| report("people", p)),
    )?;
    let interactions = crm.import_interactions(
        generator.interactions(),
        &options,
        Some(&mut |p| report("interactions", p)),
    )?;
    Ok(SynthSummary {
        organizations: organizations.inserted,
        people: people.inserted,
        interactions: interactions.inserted,
    })
}

/// Records [`Generator::consents_of`] of every person `populate` stored
/// with the same `config` (a transaction per answer, as
/// [`Crm::record_consent`] makes them); returns how many were recorded.
pub fn populate_consents(crm: &Crm, config: &SynthConfig) -> Result<u64> {
    let generator = Generator::new(config.clone());
    let mut recorded = 0;
    for i in 0..generator.person_count() {
        let answers = generator.consents_of(i);
        if answers.is_empty() {
            continue;
        }
        let id = crm
            .find_customer_by_external_id(&Generator::person_external_id(i))?
            .ok_or(crate::Error::NotFound { entity: "customer" })?
            .id;
        for answer in &answers {
            crm.record_consent(id, answer)?;
            recorded += 1;
        }
    }
    Ok(recorded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_phones_are_valid_in_every_country() {
        let mut rng = fastrand::Rng::with_seed(7);
        for (country, _, _) in COUNTRIES {
            let mut bad = Vec::new();
            for _ in 0..300 {
                let p = phone(&mut rng, country);
                if crate::normalize::phone(&p, None).is_err() {
                    bad.push(p);
                }
            }
            assert!(
                bad.is_empty(),
                "{country}: {} invalid, e.g. {:?}",
                bad.len(),
                &bad[..bad.len().min(5)]
            );
        }
    }
}
