/*
 * Many SM2 verifications in one call, so that the caller releases Python's GIL once for
 * the whole batch instead of once per signature.
 *
 * A node verifies transactions in a worker thread while its event loop runs Python. Each
 * ctypes call releases the GIL and must take it back afterwards; with the event loop busy,
 * taking it back waits for the loop's switch interval and costs a thread switch. Measured
 * on a 2-core VM (docs/benchmarks.md): one signature per call costs 990 us of CPU and
 * 20 ms of wall time beside a busy Python thread, against 360 us and 0.4 ms per
 * signature in batches through this function.
 *
 * The OpenSSL functions are passed in as pointers by the caller (chain/crypto/_openssl.py),
 * so this library links nothing and always uses the libcrypto the binding loaded. The
 * caller checks every input: each ctx is an EVP_PKEY_CTX initialised for verification
 * and used by this call only, each digest is 32 bytes, each signature is DER of the
 * given length; the Python objects behind the pointers live until the call returns.
 */
#include <stddef.h>

typedef int (*verify_fn)(void *ctx, const unsigned char *sig, size_t siglen,
                         const unsigned char *tbs, size_t tbslen);
typedef void (*clear_fn)(void);

int rx_sm2_verify_many(verify_fn verify, clear_fn clear_errors, int n, void *const *ctxs,
                       const unsigned char *const *sigs, const size_t *siglens,
                       const unsigned char *const *digests, unsigned char *ok)
{
    int failed = 0;
    for (int i = 0; i < n; i++) {
        ok[i] = verify(ctxs[i], sigs[i], siglens[i], digests[i], 32) == 1;
        if (!ok[i]) {
            failed++;
        }
    }
    if (failed) {
        clear_errors(); /* a failed verification leaves entries in OpenSSL's error queue */
    }
    return failed;
}
