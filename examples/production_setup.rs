//! The seed's environment-driven client factory, done properly: one config from `REDIS_URL`
//! or `REDIS_MODE` + `REDIS_HOST` / `REDIS_SENTINEL_HOST` / `REDIS_CLUSTER_HOST` (see
//! `RedisConfig::from_env_with` for every variable), connected with production defaults, then
//! a look at what it connected to.
//!
//! ```text
//! REDIS_MODE=sentinel REDIS_SENTINEL_HOST=10.0.0.5,10.0.0.6 REDIS_SENTINEL_MASTER=mymaster \
//!   cargo run -p examples --example production_setup
//! ```

use std::time::{Duration, Instant};

use fred::prelude::*;
use redis_conn::{RedisClient, RedisConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .init();

    // Bad variables fail here with a message naming the variable and the accepted values.
    let config = RedisConfig::from_env()?;
    println!("mode      {}", config.mode.name());
    println!(
        "target    {}   (credentials never printed)",
        config.target()
    );

    let started = Instant::now();
    let redis = RedisClient::connect(config).await?;
    println!("connected in {:.1} ms", ms(started.elapsed()));

    let health = redis_conn::health(&redis).await?;
    for node in &health.nodes {
        let latency = node
            .latency
            .map(|l| format!("{:.2} ms", ms(l)))
            .unwrap_or_else(|| "-".into());
        let of = node
            .primary
            .as_deref()
            .map(|p| format!(" of {p}"))
            .unwrap_or_default();
        println!(
            "  {:<8} {:<22} ping {:<10} {}{of}",
            node.role,
            node.addr,
            latency,
            if node.ok { "ok" } else { "NOT OK" }
        );
    }

    // A round trip through the pool, and latency over 200 PINGs.
    let key = "redkit:example:production_setup";
    let _: () = redis
        .pool()
        .set(key, "hello", Some(Expiration::EX(30)), None, false)
        .await?;
    let value: String = redis.pool().get(key).await?;
    let mut samples = Vec::with_capacity(200);
    for _ in 0..200 {
        let t = Instant::now();
        let _: String = redis.next().ping(None).await?;
        samples.push(t.elapsed());
    }
    samples.sort();
    println!(
        "SET/GET {value:?}; PING p50 {:.3} ms, p99 {:.3} ms",
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() * 99 / 100])
    );
    redis.quit().await?;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
