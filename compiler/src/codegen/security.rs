//! The security constants of a generated gateway: its schemes, key store and CORS
//! settings, and each operation's requirements.

use proc_macro2::TokenStream;
use quote::quote;

use crate::model::{ConsumerStore, Cors, KeyLocation, KeySource, Model, SchemeKind, SchemeUse};

/// `const SCHEMES`, `const CONSUMERS` and `const CORS` for the `Gateway` impl.
pub fn consts(model: &Model, rt: &TokenStream) -> TokenStream {
    let schemes = model.schemes.iter().map(|s| {
        let name = &s.name;
        let kind = match &s.kind {
            SchemeKind::MutualTls => quote!(#rt::SchemeKind::MutualTls),
            SchemeKind::ApiKey { location, name } => {
                let location = match location {
                    KeyLocation::Header => quote!(Header),
                    KeyLocation::Query => quote!(Query),
                    KeyLocation::Cookie => quote!(Cookie),
                };
                quote!(#rt::SchemeKind::ApiKey(#rt::ApiKeyDef {
                    location: #rt::KeyLocation::#location,
                    name: #name,
                }))
            }
            SchemeKind::Jwt(j) => {
                let keys = match &j.keys {
                    KeySource::JwksUrl(u) => quote!(#rt::KeySource::JwksUrl(#u)),
                    KeySource::Discovery(u) => quote!(#rt::KeySource::Discovery(#u)),
                    KeySource::PemFile(p) => quote!(#rt::KeySource::PemFile(#p)),
                    KeySource::Secret(s) => quote!(#rt::KeySource::Secret(#s)),
                };
                let algorithms = &j.algorithms;
                let issuer = option(j.issuer.as_deref());
                let audience = &j.audience;
                let require_exp = j.require_exp;
                let leeway = u64::try_from(j.leeway.as_millis()).unwrap_or(u64::MAX);
                let consumer = &j.consumer_claim;
                let plan = option(j.plan_claim.as_deref());
                let forward = j.forward_claims.iter().map(|(c, h)| quote!((#c, #h)));
                quote!(#rt::SchemeKind::Jwt(#rt::JwtDef {
                    keys: #keys,
                    algorithms: &[#(#algorithms),*],
                    issuer: #issuer,
                    audience: &[#(#audience),*],
                    require_exp: #require_exp,
                    leeway: ::core::time::Duration::from_millis(#leeway),
                    consumer_claim: #consumer,
                    plan_claim: #plan,
                    forward_claims: &[#(#forward),*],
                }))
            }
        };
        quote!(#rt::SchemeDef { name: #name, kind: #kind })
    });
    let consumers = match &model.consumers {
        None => quote!(::core::option::Option::None),
        Some(ConsumerStore::File(p)) => {
            quote!(::core::option::Option::Some(#rt::ConsumerStoreDef::File(#p)))
        }
        Some(ConsumerStore::Redis(u)) => {
            quote!(::core::option::Option::Some(#rt::ConsumerStoreDef::Redis(#u)))
        }
    };
    let cors = match &model.cors {
        None => quote!(::core::option::Option::None),
        Some(Cors {
            origins,
            methods,
            headers,
            expose,
            credentials,
            max_age,
        }) => {
            let max_age = match max_age {
                Some(s) => quote!(::core::option::Option::Some(#s)),
                None => quote!(::core::option::Option::None),
            };
            quote!(::core::option::Option::Some(#rt::CorsDef {
                origins: &[#(#origins),*],
                methods: &[#(#methods),*],
                headers: &[#(#headers),*],
                expose: &[#(#expose),*],
                credentials: #credentials,
                max_age: #max_age,
            }))
        }
    };
    if model.schemes.is_empty() && model.consumers.is_none() && model.cors.is_none() {
        return TokenStream::new();
    }
    quote! {
        const SCHEMES: &'static [#rt::SchemeDef] = &[#(#schemes),*];
        const CONSUMERS: ::core::option::Option<#rt::ConsumerStoreDef> = #consumers;
        const CORS: ::core::option::Option<#rt::CorsDef> = #cors;
    }
}

/// An operation's `security` field.
pub fn requirements(security: &[Vec<SchemeUse>], rt: &TokenStream) -> TokenStream {
    let alternatives = security.iter().map(|alt| {
        let uses = alt.iter().map(|u| {
            let scheme = u.scheme;
            let scopes = &u.scopes;
            quote!(#rt::SchemeUse { scheme: #scheme, scopes: &[#(#scopes),*] })
        });
        quote!(&[#(#uses),*])
    });
    quote!(&[#(#alternatives),*])
}

fn option(v: Option<&str>) -> TokenStream {
    match v {
        Some(s) => quote!(::core::option::Option::Some(#s)),
        None => quote!(::core::option::Option::None),
    }
}
