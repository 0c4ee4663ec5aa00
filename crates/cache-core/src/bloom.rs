//! A Bloom filter kept in Redis (a plain bitmap, no module needed) to stop cache penetration:
//! ids that were never added are answered "absent" without touching the cache or the builder.

use redis_conn::{RedisClient, Script};

use crate::error::{Error, refused};

static BLOOM: Script = Script::new("bloom", include_str!("bloom.lua"));

/// Largest bitmap Redis allows (a string of 512 MiB).
const MAX_BITS: u64 = 1 << 32;

/// A Bloom filter sized from the expected number of items and the target false-positive rate.
///
/// Items must be added on every write path before they are looked up (a Bloom filter has no
/// false negatives only for items it was told about), and it cannot forget items: rebuild it
/// under a new name to drop deleted ones.
///
/// ```no_run
/// # async fn demo(redis: redis_conn::RedisClient) -> Result<(), cache_core::Error> {
/// let products = cache_core::BloomFilter::new(redis, "shop", "product-ids", 1_000_000, 0.01)?;
/// products.add_many(&["p1", "p2"]).await?;
/// assert!(products.contains("p1").await?);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct BloomFilter {
    redis: RedisClient,
    bits_key: String,
    cfg_key: String,
    m: u64,
    k: u32,
}

impl BloomFilter {
    /// A filter named `name` under `namespace`, with `m = -n·ln p / ln²2` bits and
    /// `k = m/n·ln 2` hashes (1% → 9.6 bits and 7 hashes per item).
    pub fn new(
        redis: RedisClient,
        namespace: &str,
        name: &str,
        expected_items: u64,
        fp_rate: f64,
    ) -> Result<BloomFilter, Error> {
        if expected_items == 0 || !(fp_rate > 0.0 && fp_rate < 1.0) {
            return Err(Error::Config(format!(
                "bloom filter {name}: expected_items must be > 0 and fp_rate in (0, 1), got {expected_items} and {fp_rate}"
            )));
        }
        let ln2 = std::f64::consts::LN_2;
        let m = (-(expected_items as f64) * fp_rate.ln() / (ln2 * ln2)).ceil() as u64;
        if m > MAX_BITS {
            return Err(Error::Config(format!(
                "bloom filter {name}: {m} bits exceed Redis's 2^32-bit string limit; shard it or relax the rate"
            )));
        }
        let k = ((m as f64 / expected_items as f64) * ln2).round().max(1.0) as u32;
        let tag = redis_conn::Namespace::new(namespace)
            .and_then(|ns| ns.tagged(&format!("bloom:{name}")))
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(BloomFilter {
            redis,
            bits_key: tag.key("bits"),
            cfg_key: tag.key("params"),
            m,
            k,
        })
    }

    /// Bits and hash functions.
    pub fn params(&self) -> (u64, u32) {
        (self.m, self.k)
    }

    /// The `k` bit indexes of an item (double hashing over SHA-1, stable across processes).
    fn indexes(&self, item: &str, out: &mut Vec<String>) {
        let hex = fred::util::sha1_hash(item);
        let h1 = u64::from_str_radix(&hex[0..16], 16).unwrap_or(0);
        let h2 = u64::from_str_radix(&hex[16..32], 16).unwrap_or(0) | 1;
        for i in 0..u64::from(self.k) {
            out.push((h1.wrapping_add(i.wrapping_mul(h2)) % self.m).to_string());
        }
    }

    async fn run(&self, mode: &str, items: &[&str]) -> Result<Vec<bool>, Error> {
        let mut out = Vec::with_capacity(items.len());
        // Batches keep each script call short (a script blocks the server while it runs).
        for chunk in items.chunks(500) {
            let mut args = vec![mode.to_string(), self.m.to_string(), self.k.to_string()];
            for item in chunk {
                self.indexes(item, &mut args);
            }
            let flags: Vec<i64> = BLOOM
                .run(
                    self.redis.pool(),
                    vec![self.bits_key.as_str(), self.cfg_key.as_str()],
                    args,
                )
                .await
                .map_err(|e| {
                    refused(e, || {
                        format!(
                            "script {} (HGET, HSET, GETBIT, SETBIT on {} and {})",
                            BLOOM.name(),
                            self.bits_key,
                            self.cfg_key
                        )
                    })
                })?;
            out.extend(flags.into_iter().map(|f| f == 1));
        }
        Ok(out)
    }

    /// Adds items; returns for each whether it was (probably) present already.
    pub async fn add_many(&self, items: &[&str]) -> Result<Vec<bool>, Error> {
        self.run("add", items).await
    }

    /// Adds one item; returns whether it was (probably) present already (check-and-add).
    pub async fn add(&self, item: &str) -> Result<bool, Error> {
        Ok(self
            .run("add", &[item])
            .await?
            .first()
            .copied()
            .unwrap_or(false))
    }

    /// Whether each item may be present (`false` is certain absence).
    pub async fn contains_many(&self, items: &[&str]) -> Result<Vec<bool>, Error> {
        self.run("check", items).await
    }

    /// Whether an item may be present (`false` is certain absence).
    pub async fn contains(&self, item: &str) -> Result<bool, Error> {
        Ok(self
            .run("check", &[item])
            .await?
            .first()
            .copied()
            .unwrap_or(false))
    }

    /// Deletes the filter (bitmap and parameters).
    pub async fn clear(&self) -> Result<(), Error> {
        use fred::interfaces::KeysInterface;
        let _: i64 = self
            .redis
            .pool()
            .del(vec![self.bits_key.as_str(), self.cfg_key.as_str()])
            .await
            .map_err(|e| {
                refused(e.into(), || {
                    format!("DEL {} {}", self.bits_key, self.cfg_key)
                })
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizing_follows_the_textbook_formulas() {
        let ln2 = std::f64::consts::LN_2;
        let m = (-(10_000f64) * 0.01f64.ln() / (ln2 * ln2)).ceil();
        assert_eq!(m as u64, 95_851);
        assert_eq!(((m / 10_000.0) * ln2).round() as u32, 7);
    }
}
