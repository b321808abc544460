// The peer wire message property, shared word for word by the fuzz target
// (`fuzz_targets/wire_message.rs`) and the seed replay in `cargo test` (`tests/fuzz_corpus.rs`),
// which both `include!` this file: the input read message after message as from a socket;
// every message read (but `Unknown`, whose payload is skipped) written back as exactly its
// bytes; and every BEP 52 hash request answered from a small tree as if it named our file,
// hashes that prove to the root or a reject.

fn check_wire_message(data: &[u8]) {
    use peerwire::wire::Message;

    let mut rest: &[u8] = data;
    loop {
        let before = rest;
        let Ok(message) = Message::read_from(&mut rest) else {
            break;
        };
        let consumed = &before[..before.len() - rest.len()];
        if !matches!(message, Message::Unknown { .. }) {
            assert_eq!(
                message.to_bytes(),
                consumed,
                "{message:?} did not round-trip"
            );
        }
        if let Message::HashRequest { .. } = message {
            check_hash_answer(&message);
        }
        if rest.is_empty() {
            break;
        }
    }
}

/// One file of 11 pieces of 64 KiB (the last a block short): the piece layer is layer 2 and
/// pads to 16, so layers 2 to 6 can be asked for.
fn fuzz_tree() -> &'static (peerwire::peer::state::PieceLayers, peerwire::merkle::Sha256Hash) {
    use peerwire::merkle::{self, BlocksPerPiece, Sha256Hash};
    use peerwire::metainfo::{InfoHashV2, V2File, V2Info};
    use peerwire::peer::state::PieceLayers;
    static TREE: std::sync::OnceLock<(PieceLayers, Sha256Hash)> = std::sync::OnceLock::new();
    TREE.get_or_init(|| {
        let leaves: Vec<Sha256Hash> = (0..43u8).map(|i| Sha256Hash::of(&[i])).collect();
        let per_piece = BlocksPerPiece::for_piece_length(65536).expect("a v2 piece length");
        let root = merkle::root_of(&leaves);
        let file = V2File {
            path: vec!["f".into()],
            length: 43 * 16384,
            pieces_root: Some(root),
            piece_layer: merkle::piece_layer(&leaves, per_piece),
            symlink: None,
            executable: false,
            hidden: false,
        };
        let v2 = V2Info {
            info_hash: InfoHashV2([0; 32]),
            files: vec![file],
            piece_layers_complete: true,
        };
        let layers = PieceLayers::from_v2(&v2, 65536).expect("a file of 11 pieces");
        (layers, root)
    })
}

/// The request as if it named our file: a reject with the request's header, or exactly the
/// hashes its header implies; and with the most proof layers the tree allows, a proof that
/// leads to the root.
fn check_hash_answer(request: &peerwire::wire::Message) {
    use peerwire::merkle;
    use peerwire::peer::state::HashRefusal;
    use peerwire::wire::Message;

    let (layers, root) = fuzz_tree();
    let Some(mut range) = request.hash_range() else {
        return;
    };
    range.pieces_root = *root;
    let (answer, refusal) = layers.answer(&range);
    let Message::Hashes { hashes, .. } = &answer else {
        assert_eq!(answer, range.reject());
        assert!(refusal.is_some());
        return;
    };
    assert_eq!(answer.hash_range(), Some(range));
    assert_eq!(hashes.len(), range.hash_count());
    // More proof layers until the tree has no more: the last answer reaches the root.
    let mut full = hashes.clone();
    for proof_layers in range.proof_layers + 1..=63 {
        let more = peerwire::wire::hashes::HashRange {
            proof_layers,
            ..range
        };
        match layers.serve(&more) {
            Ok(Message::Hashes { hashes, .. }) => full = hashes,
            Err(HashRefusal::TooManyProofLayers { .. }) => break,
            other => panic!("{more:?}: {other:?}"),
        }
    }
    let length = range.length as usize;
    let subtree = merkle::root_from_layer(&full[..length], range.base_layer);
    let at = (range.index >> range.span()) as usize;
    assert!(
        merkle::verify_proof(subtree, at, &full[length..], root),
        "{range:?}: the answer does not prove to the root"
    );
}
