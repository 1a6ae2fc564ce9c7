#ifndef STRATUS_CLDAP_SHIM_H
#define STRATUS_CLDAP_SHIM_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <lber.h>
#include <ldap.h>

/* Macros with casts do not import into Swift; these constants do. */
static const int STRATUS_LDAP_SCOPE_BASE = LDAP_SCOPE_BASE;
static const int STRATUS_LDAP_SCOPE_ONELEVEL = LDAP_SCOPE_ONELEVEL;
static const int STRATUS_LDAP_SCOPE_SUBTREE = LDAP_SCOPE_SUBTREE;
static const int STRATUS_LDAP_MOD_ADD = LDAP_MOD_ADD;
static const int STRATUS_LDAP_MOD_DELETE = LDAP_MOD_DELETE;
static const int STRATUS_LDAP_MOD_REPLACE = LDAP_MOD_REPLACE;

/* A NULL-terminated array of `count` modifications, freed with ldap_mods_free(mods, 1). */
static inline LDAPMod **stratus_ldap_mods_new(int count) {
    return (LDAPMod **)calloc((size_t)count + 1, sizeof(LDAPMod *));
}

/* One modification; takes copies of `type` and of the `count` strings in `values`. */
static inline LDAPMod *stratus_ldap_mod_new(int op, const char *type, const char *const *values, int count) {
    LDAPMod *mod = (LDAPMod *)calloc(1, sizeof(LDAPMod));
    if (mod == NULL) return NULL;
    mod->mod_op = op;
    mod->mod_type = strdup(type);
    if (count > 0) {
        char **copies = (char **)calloc((size_t)count + 1, sizeof(char *));
        for (int i = 0; copies != NULL && i < count; i++) copies[i] = strdup(values[i]);
        mod->mod_values = copies;
    }
    return mod;
}

/* The page cookie of a paged-results response, or an empty one at the last page. */
static inline int stratus_ldap_page_cookie(LDAP *ld, LDAPControl **controls, struct berval *cookie) {
    LDAPControl *control = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, controls, NULL);
    cookie->bv_val = NULL;
    cookie->bv_len = 0;
    if (control == NULL) return LDAP_SUCCESS;
    ber_int_t estimate = 0;
    return ldap_parse_pageresponse_control(ld, control, &estimate, cookie);
}

/* RFC 4533's Sync Request Control, critical, mode refreshAndPersist and no cookie: the DER of
   syncRequestValue ::= SEQUENCE { mode ENUMERATED { refreshAndPersist (3) } }. */
static inline int stratus_ldap_sync_control(LDAPControl **control) {
    static char value[] = { 0x30, 0x03, 0x0a, 0x01, 0x03 };
    struct berval bv = { sizeof(value), value };
    return ldap_control_create("1.3.6.1.4.1.4203.1.9.1.1", 1, &bv, 1, control);
}

/* libldap's message types (macros with casts, which Swift does not import). */
static const int STRATUS_LDAP_RES_SEARCH_ENTRY = 0x64;
static const int STRATUS_LDAP_RES_SEARCH_RESULT = 0x65;
static const int STRATUS_LDAP_RES_INTERMEDIATE = 0x79;

#endif
