//! The e-commerce service end to end on every topology: a flash sale with 200 concurrent
//! buyers over 4 client instances for a product with 50 units.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use examples::shop::{OrderMessage, Placed, Product, Shop};
use redis_conn::{RedisClient, RedisConfig};
use testkit::{Kind, SharedTopology};

/// Each test makes its own shop namespace and connects as that shop's user ([`as_shop`]).
async fn shared(kind: Kind) -> ((), &'static SharedTopology) {
    let topo =
        tokio::task::block_in_place(|| testkit::shared(kind)).unwrap_or_else(|e| panic!("{e}"));
    ((), topo)
}

/// A new client as the least-privilege user of the shop in namespace `ns`
/// ([`examples::shop::acl_rule`]; one user per shop, on a secure shared topology).
async fn as_shop(t: &SharedTopology, ns: &str) -> RedisClient {
    let user = format!("flash-sale-{}", ns.replace(':', "-"));
    let url = t
        .url_for(&user, &examples::shop::acl_rule(ns).to_string())
        .unwrap_or_else(|e| panic!("shop user: {e}"));
    RedisClient::connect(RedisConfig::from_url(&url).expect("url"))
        .await
        .unwrap_or_else(|e| panic!("connect as {user} ({}): {e}", t.kind))
}

testkit::topology_tests!(
    a_flash_sale_sells_exactly_the_stock_and_processes_each_order_once,
    a_write_fenced_by_a_newer_token_is_refused_and_unknown_products_are_typed_errors,
);

/// The reserve step compares the lock's token with the last one written: when a newer holder
/// already wrote (simulated by a fence far in the future), the order is refused with a typed
/// error and nothing changes. An unknown product is a typed error too.
async fn a_write_fenced_by_a_newer_token_is_refused_and_unknown_products_are_typed_errors(
    _: (),
    t: &SharedTopology,
) {
    use fred::interfaces::HashesInterface;
    let ns = testkit::unique_name("t:shop");
    let redis = as_shop(t, &ns).await;
    let shop = Shop::new(redis.clone(), &ns).expect("shop");
    shop.add_product(&Product {
        id: 5,
        name: "Mug".into(),
        price_cents: 900,
        stock: 3,
    })
    .await
    .expect("add");
    assert!(matches!(
        shop.place_order(1, 5, 1).await.expect("order"),
        Placed::Accepted(_)
    ));
    let _: () = redis
        .pool()
        .hset(
            format!("{ns}:{{p5}}:product"),
            ("fence", "9000000000000000"),
        )
        .await
        .expect("HSET");
    let refused = shop.place_order(2, 5, 1).await;
    assert!(
        matches!(refused, Err(examples::shop::ShopError::Fenced(5))),
        "{refused:?}"
    );
    assert_eq!(shop.stock(5).await.expect("stock"), 2, "nothing changed");
    let unknown = shop.place_order(1, 404, 1).await;
    assert!(
        matches!(unknown, Err(examples::shop::ShopError::NoSuchProduct(404))),
        "{unknown:?}"
    );
    assert_eq!(shop.get_product(404).await.expect("lookup"), None);

    // A process that died between reserving and enqueueing: the message is gone (claimed and
    // acknowledged here without processing), the order still pending. The recovery sweep
    // sends it again and the worker's step processes it.
    for d in shop.queue().claim(10).await.expect("claim") {
        d.ack().await.expect("ack");
    }
    assert_eq!(
        shop.requeue_stale_orders(5, Duration::ZERO)
            .await
            .expect("requeue"),
        1
    );
    let again = shop.queue().claim(10).await.expect("claim");
    assert_eq!(again.len(), 1);
    for d in again {
        assert!(shop.process_order(d.message()).await.expect("process"));
        d.ack().await.expect("ack");
    }
    assert_eq!(shop.processed_orders(5).await.expect("processed"), 1);
    assert_eq!(
        shop.requeue_stale_orders(5, Duration::ZERO)
            .await
            .expect("requeue"),
        0,
        "a processed order is no longer pending"
    );
}

async fn a_flash_sale_sells_exactly_the_stock_and_processes_each_order_once(
    _: (),
    t: &SharedTopology,
) {
    const BUYERS: u64 = 200;
    const STOCK: i64 = 50;
    const PRODUCT: u64 = 123;
    let ns = testkit::unique_name("t:shop");
    let mut shops = Vec::new();
    for _ in 0..4 {
        shops.push(Shop::new(as_shop(t, &ns).await, &ns).expect("shop"));
    }
    shops[0]
        .add_product(&Product {
            id: PRODUCT,
            name: "Limited teapot".into(),
            price_cents: 4999,
            stock: STOCK,
        })
        .await
        .expect("add product");
    // Two workers (in two of the instances) process orders while the sale runs.
    let stop = Arc::new(AtomicBool::new(false));
    let duplicates = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = shops[2..]
        .iter()
        .map(|shop| {
            let (shop, stop, duplicates) = (shop.clone(), stop.clone(), duplicates.clone());
            tokio::spawn(async move {
                shop.run_worker(8, duplicates, async move {
                    while !stop.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                })
                .await
                .expect("worker")
            })
        })
        .collect();
    // Someone watches the stock during the sale: it must never be seen below zero.
    let lowest = Arc::new(std::sync::atomic::AtomicI64::new(STOCK));
    let watcher = {
        let (shop, stop, lowest) = (shops[1].clone(), stop.clone(), lowest.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(s) = shop.stock(PRODUCT).await {
                    lowest.fetch_min(s, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let buyers: Vec<_> = (0..BUYERS)
        .map(|user| {
            let shop = shops[user as usize % shops.len()].clone();
            tokio::spawn(async move {
                // Everyone looks at the product first (cache-aside, one build).
                let p = shop.get_product(PRODUCT).await.expect("product");
                assert!(p.is_some());
                shop.place_order(user, PRODUCT, 1)
                    .await
                    .expect("place order")
            })
        })
        .collect();
    let mut accepted = Vec::new();
    let mut rejected = 0;
    for (user, b) in buyers.into_iter().enumerate() {
        match b.await.expect("buyer") {
            Placed::Accepted(order) => accepted.push((user as u64, order)),
            Placed::OutOfStock { left } => {
                assert_eq!(left, 0, "rejected only when sold out");
                rejected += 1;
            }
        }
    }
    assert_eq!(accepted.len() as i64, STOCK, "exactly the stock is sold");
    assert_eq!(rejected, BUYERS as i64 - STOCK);
    assert_eq!(shops[1].stock(PRODUCT).await.expect("stock"), 0);

    // A redelivery (as after a worker crash before its ack) is absorbed.
    let (user, order) = accepted[0].clone();
    let raw: rqueue::Queue<OrderMessage> = shops[0].queue().clone();
    raw.enqueue(&OrderMessage {
        order: order.clone(),
        product: PRODUCT,
        user,
    })
    .await
    .expect("duplicate message");

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = shops[0].queue().stats().await.expect("stats");
        let processed = shops[0].processed_orders(PRODUCT).await.expect("processed");
        if processed == STOCK as u64 && s.ready + s.in_flight + s.delayed == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{processed} of {STOCK} processed: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("worker task");
    }
    watcher.await.expect("watcher");
    assert_eq!(lowest.load(Ordering::Relaxed), 0, "stock never below zero");
    for (_, order) in &accepted {
        assert_eq!(
            shops[0]
                .times_processed(PRODUCT, order)
                .await
                .expect("order"),
            1,
            "order {order} processed exactly once"
        );
    }
    assert_eq!(
        duplicates.load(Ordering::Relaxed),
        1,
        "the redelivery was absorbed"
    );
    let s = shops[0].queue().stats().await.expect("stats");
    assert_eq!(s.dead, 0, "{s:?}");
    // The buyer's cached order list shows the processed order.
    let orders = shops[3].get_user_orders(user).await.expect("orders");
    assert_eq!(orders.len(), 1);
    assert_eq!(
        (orders[0].id.as_str(), orders[0].status.as_str()),
        (order.as_str(), "processed")
    );
    let builds: u64 = shops.iter().map(|s| s.product_cache_stats().builds).sum();
    assert!(
        builds <= 4,
        "product details built {builds} times for 200 readers"
    );
}
