//! The traffic-control constants of a generated gateway: plans, the limit store, and each
//! operation's route limits.

use proc_macro2::TokenStream;
use quote::quote;

use crate::model::{LimitKey, LimitStore, Model, OnError, Rate, RouteLimit, Window};

fn rate(r: &Rate, rt: &TokenStream) -> TokenStream {
    let (limit, burst) = (r.limit, r.burst);
    let ms = u64::try_from(r.period.as_millis()).unwrap_or(u64::MAX);
    quote!(#rt::RateDef {
        limit: #limit,
        period: ::core::time::Duration::from_millis(#ms),
        burst: #burst,
    })
}

fn index(i: Option<usize>) -> TokenStream {
    match i {
        Some(i) => quote!(::core::option::Option::Some(#i)),
        None => quote!(::core::option::Option::None),
    }
}

/// `const PLANS` and `const LIMITS` for the `Gateway` impl (nothing when nothing is limited).
pub fn consts(model: &Model, rt: &TokenStream) -> TokenStream {
    let Some(limits) = &model.limits else {
        return TokenStream::new();
    };
    let plans = model.plans.iter().map(|p| {
        let name = &p.name;
        let rate = match &p.rate {
            Some(r) => {
                let r = rate(r, rt);
                quote!(::core::option::Option::Some(#r))
            }
            None => quote!(::core::option::Option::None),
        };
        let quotas = p.quotas.iter().map(|q| {
            let limit = q.limit;
            let window = match q.window {
                Window::Minute => quote!(Minute),
                Window::Hour => quote!(Hour),
                Window::Day => quote!(Day),
                Window::Month => quote!(Month),
            };
            quote!(#rt::QuotaDef { limit: #limit, window: #rt::Window::#window })
        });
        quote!(#rt::PlanDef { name: #name, rate: #rate, quotas: &[#(#quotas),*] })
    });
    let store = match &limits.store {
        LimitStore::Memory => quote!(#rt::LimitStoreDef::Memory),
        LimitStore::Redis {
            url,
            on_error,
            timeout,
        } => {
            let on_error = match on_error {
                OnError::Allow => quote!(Allow),
                OnError::Deny => quote!(Deny),
                OnError::Local => quote!(Local),
            };
            let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
            quote!(#rt::LimitStoreDef::Redis {
                url: #url,
                on_error: #rt::OnError::#on_error,
                timeout: ::core::time::Duration::from_millis(#ms),
            })
        }
    };
    let default_plan = index(limits.default_plan);
    let anonymous_plan = index(limits.anonymous_plan);
    let proxies = &limits.trusted_proxies;
    quote! {
        const PLANS: &'static [#rt::PlanDef] = &[#(#plans),*];
        const LIMITS: ::core::option::Option<#rt::LimitsDef> = ::core::option::Option::Some(#rt::LimitsDef {
            store: #store,
            default_plan: #default_plan,
            anonymous_plan: #anonymous_plan,
            trusted_proxies: &[#(#proxies),*],
        });
    }
}

/// An operation's `rate_limits` field.
pub fn route_limits(limits: &[RouteLimit], rt: &TokenStream) -> TokenStream {
    let items = limits.iter().map(|l| {
        let r = rate(&l.rate, rt);
        let key = match &l.key {
            LimitKey::Consumer => quote!(#rt::LimitKey::Consumer),
            LimitKey::Ip => quote!(#rt::LimitKey::Ip),
            LimitKey::Header(h) => quote!(#rt::LimitKey::Header(#h)),
            LimitKey::Claim(c) => quote!(#rt::LimitKey::Claim(#c)),
        };
        quote!(#rt::RouteLimitDef { rate: #r, key: #key })
    });
    quote!(&[#(#items),*])
}
