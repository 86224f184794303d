//! Generated routers, called in-process: precedence, backtracking, typed parameters,
//! mixed segments, trailing slashes, 404 and 405.

use gatewayc_runtime::RouteError;
use gatewayc_runtime::http::Method;
use gatewayc_runtime::param::Text;
use gatewayc_tests::proxy::{Route, route};

fn id(method: Method, path: &str) -> Result<&'static str, RouteError> {
    route(&method, path).map(|r| r.operation_id())
}

#[test]
fn literal_segments_beat_parameters() {
    assert_eq!(id(Method::GET, "/items/mine"), Ok("myItems"));
    assert_eq!(
        route(&Method::GET, "/items/42"),
        Ok(Route::GetItem { id: 42 })
    );
    assert_eq!(id(Method::GET, "/users/@me/items"), Ok("myUserItems"));
}

#[test]
fn a_literal_branch_that_fails_deeper_falls_back_to_the_parameter() {
    assert_eq!(
        route(&Method::GET, "/users/@me/items/5"),
        Ok(Route::UserItem {
            user_id: Text::new("@me"),
            item_id: 5
        })
    );
}

#[test]
fn typed_parameters_parse_or_give_400() {
    assert_eq!(
        route(&Method::GET, "/flags/true/2.5/cat"),
        Ok(Route::Typed {
            on: true,
            ratio: 2.5,
            kind: Text::new("cat")
        })
    );
    let bad = |p: &str| match route(&Method::GET, p) {
        Err(RouteError::BadParam { name, .. }) => name,
        other => panic!("{p}: {other:?}"),
    };
    assert_eq!(bad("/flags/yes/2.5/cat"), "on");
    assert_eq!(bad("/flags/true/NaN/cat"), "ratio");
    assert_eq!(bad("/flags/true/1/cow"), "kind");
    assert_eq!(bad("/items/4294967296"), "id");
    assert_eq!(bad("/items/12abc"), "id");
}

#[test]
fn percent_encoded_values_are_decoded() {
    assert_eq!(
        route(&Method::GET, "/files/a%20b%2Fc"),
        Ok(Route::GetFile {
            name: Text::new("a b/c")
        })
    );
    assert_eq!(
        route(&Method::GET, "/flags/true/1/c%61t"),
        Ok(Route::Typed {
            on: true,
            ratio: 1.0,
            kind: Text::new("cat")
        })
    );
}

#[test]
fn segments_mixing_literals_and_parameters() {
    assert_eq!(
        route(&Method::GET, "/Accounts/AC123.json"),
        Ok(Route::Account {
            sid: Text::new("AC123")
        })
    );
    assert_eq!(
        route(&Method::GET, "/Accounts/AC.1.json"),
        Ok(Route::Account {
            sid: Text::new("AC.1")
        })
    );
    assert_eq!(
        id(Method::GET, "/Accounts/.json"),
        Err(RouteError::NotFound)
    );
    assert_eq!(
        id(Method::GET, "/Accounts/AC123"),
        Err(RouteError::NotFound)
    );
    assert_eq!(
        route(&Method::POST, "/v1/job-7:cancel"),
        Ok(Route::Cancel {
            name: Text::new("job-7")
        })
    );
    assert_eq!(id(Method::POST, "/v1/job-7"), Err(RouteError::NotFound));
}

#[test]
fn trailing_slashes_and_empty_segments_are_significant() {
    assert_eq!(id(Method::GET, "/dir/"), Ok("listDir"));
    assert_eq!(id(Method::GET, "/dir"), Err(RouteError::NotFound));
    assert_eq!(id(Method::GET, "/items/42/"), Err(RouteError::NotFound));
    assert_eq!(id(Method::GET, "/items//42"), Err(RouteError::NotFound));
    assert_eq!(id(Method::GET, "/items/"), Err(RouteError::NotFound));
    assert_eq!(id(Method::GET, ""), Err(RouteError::NotFound));
}

#[test]
fn wrong_method_is_405_with_allow_and_head_follows_get() {
    assert_eq!(
        id(Method::DELETE, "/items/42"),
        Err(RouteError::MethodNotAllowed("GET, HEAD"))
    );
    assert_eq!(id(Method::HEAD, "/items/42"), Ok("getItem"));
    assert_eq!(
        id(Method::GET, "/v1/x:cancel"),
        Err(RouteError::MethodNotAllowed("POST"))
    );
}

#[test]
fn the_example_router_agrees_with_its_spec() {
    use petstore_gateway::{Route as P, route as proute};
    assert_eq!(
        proute(&Method::GET, "/pets/mine").map(|r| r.operation_id()),
        Ok("listMyPets")
    );
    assert_eq!(proute(&Method::GET, "/pets/7"), Ok(P::GetPet { pet_id: 7 }));
    assert_eq!(
        proute(&Method::POST, "/pets/7:adopt"),
        Ok(P::AdoptPet { pet_id: 7 })
    );
    assert_eq!(
        proute(&Method::GET, "/stores/eu/inventory"),
        Ok(P::GetInventory {
            region: Text::new("eu")
        })
    );
}
