//! The seed's e-commerce story on a real Redis (from `REDIS_URL` / `REDIS_MODE` …, see
//! `redis_conn::RedisConfig::from_env`): product details served from the cache, an order
//! placed under a lock, processed by the queue worker, the user's orders; then a flash sale —
//! 200 buyers on 4 client instances for 50 units — and a summary. Cleans up its keys.
//!
//! `cargo xtask demo` runs it against a throwaway local Redis;
//! `REDIS_URL=redis://… cargo run -p examples --example shop_demo` against yours.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use examples::shop::{Placed, Product, Shop};
use futures::TryStreamExt;
use redis_conn::{RedisClient, RedisConfig};

const TEAPOT: u64 = 123;
const LIMITED: u64 = 777;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let config = RedisConfig::from_env()?;
    let redis = RedisClient::connect(config.clone()).await?;
    let ns = format!(
        "redkit-demo:{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    println!(
        "redkit shop demo — {} Redis, keys under {ns}:*\n",
        config.mode.name()
    );
    let result = story(&redis, &config, &ns).await;
    let removed = clean_up(&redis, &ns).await?;
    println!(
        "\ncleaned up {removed} keys; {:.1?} in all",
        started.elapsed()
    );
    result
}

async fn story(
    redis: &RedisClient,
    config: &RedisConfig,
    ns: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let shop = Shop::new(redis.clone(), ns)?;
    println!(
        "1. The store (Redis hashes) gets a product: #{TEAPOT} \"Rusty teapot\", 100 in stock."
    );
    shop.add_product(&Product {
        id: TEAPOT,
        name: "Rusty teapot".into(),
        price_cents: 2599,
        stock: 100,
    })
    .await?;

    let t = Instant::now();
    let p = shop.get_product(TEAPOT).await?;
    let first = t.elapsed();
    let t = Instant::now();
    let _ = shop.get_product(TEAPOT).await?;
    let second = t.elapsed();
    if let Some(p) = p {
        println!(
            "2. Product details, cache-aside: \"{}\" at ${}.{:02} — first read missed and built from the store ({first:.1?}), \
             second read hit the cache ({second:.1?}).",
            p.name,
            p.price_cents / 100,
            p.price_cents % 100
        );
    }

    let stop = Arc::new(AtomicBool::new(false));
    let duplicates = Arc::new(AtomicU64::new(0));
    let worker = {
        let (shop, stop, duplicates) = (shop.clone(), stop.clone(), duplicates.clone());
        tokio::spawn(async move {
            shop.run_worker(8, duplicates, async move {
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
        })
    };
    println!("3. An order worker starts (concurrency 8, retries with backoff, dead-letter set).");

    let placed = shop.place_order(1001, TEAPOT, 2).await?;
    let Placed::Accepted(order) = placed else {
        return Err("the first order was refused".into());
    };
    println!(
        "4. User 1001 orders 2 teapots: under the lock \"product:{TEAPOT}\" the stock is checked and decremented \
         in one fenced script (fence = the lock's token), the order is queued. Order {order}; stock now {}.",
        shop.stock(TEAPOT).await?
    );
    let orders = shop.get_user_orders(1001).await?;
    println!(
        "5. User 1001's orders (read through the order-list cache): {}",
        orders
            .iter()
            .map(|o| format!("{} ×{} [{}]", o.id, o.qty, o.status))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while shop.processed_orders(TEAPOT).await? < 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let orders = shop.get_user_orders(1001).await?;
    println!(
        "6. Once the worker has processed it (which drops the user's cached list): {}",
        orders
            .iter()
            .map(|o| format!("{} [{}]", o.id, o.status))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // The flash sale: 200 buyers over 4 client instances (as if 4 service replicas).
    println!(
        "\n7. Flash sale: product #{LIMITED} \"Limited edition kettle\", 50 units, 200 buyers on 4 client instances."
    );
    let mut shops = vec![shop.clone()];
    for _ in 0..3 {
        shops.push(Shop::new(RedisClient::connect(config.clone()).await?, ns)?);
    }
    shop.add_product(&Product {
        id: LIMITED,
        name: "Limited edition kettle".into(),
        price_cents: 9900,
        stock: 50,
    })
    .await?;
    let sale = Instant::now();
    let buyers: Vec<_> = (0..200u64)
        .map(|i| {
            let shop = shops[i as usize % shops.len()].clone();
            tokio::spawn(async move {
                shop.get_product(LIMITED).await?;
                shop.place_order(10_000 + i, LIMITED, 1).await
            })
        })
        .collect();
    let (mut accepted, mut rejected, mut failed) = (0, 0, 0);
    for b in buyers {
        match b.await? {
            Ok(Placed::Accepted(_)) => accepted += 1,
            Ok(Placed::OutOfStock { .. }) => rejected += 1,
            Err(e) => {
                failed += 1;
                eprintln!("   a buyer failed: {e}");
            }
        }
    }
    let sale_took = sale.elapsed();
    let deadline = Instant::now() + Duration::from_secs(20);
    while shop.processed_orders(LIMITED).await? < accepted && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let report = worker.await??;

    let stock = shop.stock(LIMITED).await?;
    let processed = shop.processed_orders(LIMITED).await?;
    // Product reads: 2 in the story, one per buyer in the sale.
    let reads: u64 = 2 + 200;
    let (mut hits, mut shared, mut builds) = (0, 0, 0);
    let mut waits = examples::shop::LockWaits::default();
    for s in &shops {
        let c = s.product_cache_stats();
        hits += c.hits + c.l1_hits;
        shared += c.coalesced;
        builds += c.builds;
        let w = s.lock_waits();
        waits.count += w.count;
        waits.total_us += w.total_us;
        waits.max_us = waits.max_us.max(w.max_us);
    }
    let q = shop.queue().stats().await?;
    println!("   done in {sale_took:.1?}.\n");
    println!("Summary");
    println!(
        "  orders accepted / rejected   {accepted} / {rejected}{}",
        if failed > 0 {
            format!(" ({failed} failed)")
        } else {
            String::new()
        }
    );
    println!(
        "  stock left                   {stock} (never below 0: checked and decremented in one script)"
    );
    println!(
        "  orders processed             {processed} of {accepted}, each exactly once; {} redelivered duplicates absorbed",
        duplicates.load(Ordering::Relaxed)
    );
    println!(
        "  product details cache        {reads} reads, {builds} built from the store: {:.1}% served by the cache \
         ({hits} hits, {shared} joined a read already in flight)",
        100.0 * reads.saturating_sub(builds) as f64 / reads as f64
    );
    println!(
        "  lock waits                   {} locks taken, mean wait {:.1} ms, longest {:.1} ms (the 200 buyers queue on one product's lock)",
        waits.count,
        waits.total_us as f64 / waits.count.max(1) as f64 / 1000.0,
        waits.max_us as f64 / 1000.0
    );
    println!(
        "  order queue                  {} enqueued, {} acked, {} retried, {} dead, {} in flight",
        q.enqueued, q.acked, q.retried, q.dead, q.in_flight
    );
    println!(
        "  worker                       {} acked, {} retried, {} dead",
        report.acked, report.retried, report.dead
    );
    if accepted != 50 || stock != 0 || processed != accepted {
        return Err("the flash sale did not add up".into());
    }
    Ok(())
}

/// Deletes every key of the demo (SCAN on every primary, never KEYS).
async fn clean_up(redis: &RedisClient, ns: &str) -> Result<u64, Box<dyn std::error::Error>> {
    use fred::interfaces::KeysInterface;
    let mut pages = std::pin::pin!(redis_conn::scan_keys(redis, &format!("{ns}:*"), 500));
    let mut removed = 0;
    while let Some(keys) = pages.try_next().await? {
        for k in keys {
            removed += redis.pool().unlink::<u64, _>(k).await?;
        }
    }
    Ok(removed)
}
