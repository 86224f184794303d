//! The aggregate definition of an operation (`x-gateway.aggregate`): its parts, their
//! paths as pieces, and how the answers are combined.

use std::collections::BTreeMap;

use proc_macro2::TokenStream;
use quote::quote;

use crate::model::{Operation, ParamType, PartPiece, Shape};

/// An operation's `aggregate` field: `None`, or `Some(&AggregateDef { .. })`.
pub fn def(
    op: &Operation,
    upstream_index: &BTreeMap<&str, usize>,
    rt: &TokenStream,
) -> TokenStream {
    let Some(agg) = &op.aggregate else {
        return quote!(::core::option::Option::None);
    };
    let parts = agg.parts.iter().map(|p| {
        let name = &p.name;
        let up = upstream_index
            .get(p.upstream.as_str())
            .copied()
            .unwrap_or(0);
        let path = p
            .path
            .iter()
            .map(|piece| piece_tokens(op, piece, false, rt));
        let query = p
            .query
            .iter()
            .map(|piece| piece_tokens(op, piece, true, rt));
        let needs = &p.needs;
        let ms = u64::try_from(p.timeout.as_millis()).unwrap_or(u64::MAX);
        let optional = p.optional;
        let max_response = p.max_response;
        let mock = match &p.mock {
            Some(m) => quote!(::core::option::Option::Some(#m)),
            None => quote!(::core::option::Option::None),
        };
        quote!(#rt::PartDef {
            name: #name,
            upstream: #up,
            path: &[#(#path),*],
            query: &[#(#query),*],
            needs: &[#(#needs),*],
            timeout: ::core::time::Duration::from_millis(#ms),
            optional: #optional,
            max_response: #max_response,
            mock: #mock,
        })
    });
    let deadline = u64::try_from(agg.deadline.as_millis()).unwrap_or(u64::MAX);
    let shape = match agg.shape {
        Shape::Parts => quote!(#rt::Shape::Parts),
        Shape::Merge => quote!(#rt::Shape::Merge),
    };
    quote!(::core::option::Option::Some(&#rt::AggregateDef {
        parts: &[#(#parts),*],
        deadline: ::core::time::Duration::from_millis(#deadline),
        shape: #shape,
    }))
}

/// One piece; a multi-segment parameter in a path goes as sent, everything else is encoded
/// by the runtime where it stands.
fn piece_tokens(
    op: &Operation,
    piece: &PartPiece,
    in_query: bool,
    rt: &TokenStream,
) -> TokenStream {
    match piece {
        PartPiece::Lit(l) => quote!(#rt::Piece::Lit(#l)),
        PartPiece::Param(i) => {
            let raw = !in_query && op.params.get(*i).is_some_and(|p| p.ty == ParamType::Path);
            if raw {
                quote!(#rt::Piece::RawParam(#i))
            } else {
                quote!(#rt::Piece::Param(#i))
            }
        }
        PartPiece::Field { part, pointer } => {
            quote!(#rt::Piece::Field { part: #part, pointer: #pointer })
        }
    }
}
