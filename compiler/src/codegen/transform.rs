//! Each operation's transform, as a `TransformDef` constant (`x-gateway.transform`).

use proc_macro2::TokenStream;
use quote::quote;

use crate::model::{
    BodyTransform, Edits, JsonValue, MessageTransform, Template, TemplatePart, Transform,
};

/// `transform: Option<&'static TransformDef>` of an `OperationDef`.
pub fn def(t: Option<&Transform>, rt: &TokenStream) -> TokenStream {
    let Some(t) = t else {
        return quote!(::core::option::Option::None);
    };
    let request = message(&t.request, rt);
    let response = message(&t.response, rt);
    let status = t.status.iter().map(|(from, to)| quote!((#from, #to)));
    quote!(::core::option::Option::Some(&#rt::TransformDef {
        request: #request,
        response: #response,
        status: &[#(#status),*],
    }))
}

fn message(m: &MessageTransform, rt: &TokenStream) -> TokenStream {
    if m.headers.is_empty() && m.query.is_empty() && m.body.is_none() {
        return quote!(#rt::MessageDef::NONE);
    }
    let headers = edits(&m.headers, rt);
    let query = edits(&m.query, rt);
    let body = match &m.body {
        Some(b) => {
            let b = body(b, rt);
            quote!(::core::option::Option::Some(#b))
        }
        None => quote!(::core::option::Option::None),
    };
    quote!(#rt::MessageDef { headers: #headers, query: #query, body: #body })
}

fn edits(e: &Edits, rt: &TokenStream) -> TokenStream {
    if e.is_empty() {
        return quote!(#rt::EditsDef::NONE);
    }
    let remove = &e.remove;
    let rename = e.rename.iter().map(|(f, t)| quote!((#f, #t)));
    let set = e.set.iter().map(|(n, t)| {
        let t = template(t, rt);
        quote!((#n, #t))
    });
    quote!(#rt::EditsDef {
        remove: &[#(#remove),*],
        rename: &[#(#rename),*],
        set: &[#(#set),*],
    })
}

fn pointer(p: &[String]) -> TokenStream {
    quote!(&[#(#p),*])
}

fn body(b: &BodyTransform, rt: &TokenStream) -> TokenStream {
    let pick = b.pick.iter().map(|p| pointer(p));
    let moves = b.moves.iter().map(|(f, t)| {
        let (f, t) = (pointer(f), pointer(t));
        quote!((#f, #t))
    });
    let remove = b.remove.iter().map(|p| pointer(p));
    let set = b.set.iter().map(|(p, v)| {
        let (p, v) = (pointer(p), json(v, rt));
        quote!((#p, #v))
    });
    quote!(#rt::BodyDef {
        pick: &[#(#pick),*],
        moves: &[#(#moves),*],
        remove: &[#(#remove),*],
        set: &[#(#set),*],
    })
}

fn template(t: &Template, rt: &TokenStream) -> TokenStream {
    let parts = t.0.iter().map(|p| match p {
        TemplatePart::Lit(s) => quote!(#rt::Part::Lit(#s)),
        TemplatePart::Env { name, default } => {
            let default = match default {
                Some(d) => quote!(::core::option::Option::Some(#d)),
                None => quote!(::core::option::Option::None),
            };
            quote!(#rt::Part::Env(#name, #default))
        }
        TemplatePart::RequestId => quote!(#rt::Part::RequestId),
        TemplatePart::Consumer => quote!(#rt::Part::Consumer),
        TemplatePart::Claim(c) => quote!(#rt::Part::Claim(#c)),
    });
    quote!(&[#(#parts),*])
}

fn json(v: &JsonValue, rt: &TokenStream) -> TokenStream {
    match v {
        JsonValue::Null => quote!(#rt::JsonDef::Null),
        JsonValue::Bool(b) => quote!(#rt::JsonDef::Bool(#b)),
        JsonValue::Int(i) => quote!(#rt::JsonDef::Int(#i)),
        JsonValue::UInt(u) => quote!(#rt::JsonDef::UInt(#u)),
        JsonValue::Float(f) => quote!(#rt::JsonDef::Float(#f)),
        JsonValue::Str(t) => {
            let t = template(t, rt);
            quote!(#rt::JsonDef::Str(#t))
        }
        JsonValue::Array(items) => {
            let items = items.iter().map(|i| json(i, rt));
            quote!(#rt::JsonDef::Array(&[#(#items),*]))
        }
        JsonValue::Object(members) => {
            let members = members.iter().map(|(k, v)| {
                let v = json(v, rt);
                quote!((#k, #v))
            });
            quote!(#rt::JsonDef::Object(&[#(#members),*]))
        }
    }
}
