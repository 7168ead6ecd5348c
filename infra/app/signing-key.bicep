// The product's signing key (CERTAUTH_SIGNING_KEY_SECRET): the Key Vault secret whose versions sign status URLs,
// onboarding links and the consent state (shared/signing.py).
//
// Why the deployment creates this secret, and with what. The identity gets Key Vault Secrets Officer scoped to this
// one secret (app/rbac.bicep), not to the vault: at vault scope it could read every certificate's secret, which
// holds the private key of an exportable certificate. A role assignment scoped to a secret needs the secret to
// exist. The key itself must be 32 random bytes that no template, parameter, deployment history or output ever
// holds, so the template does not make it: it creates the secret with one DISABLED placeholder version whose value
// is not a key. shared/signing.py lists the versions, skips disabled ones (and any value that is not a 32-byte
// base64url key), finds none, and adds the first real version itself (SigningKeys._refresh / _create), which
// the secret-scoped Secrets Officer allows. A redeploy adds another disabled placeholder version at most (Key Vault
// keeps the newer real versions, and the product reads only enabled ones), so it never rotates or breaks the key.
// Rotate by adding a version: az keyvault secret set --vault-name <vault> --name <secret> --value <32 random bytes,
// base64url>, as the README says.

@description('The vault (RBAC authorization).')
param keyVaultName string

@description('The secret\'s name (1-127 of 0-9 a-z A-Z -).')
param secretName string

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' existing = {
  name: keyVaultName
}

resource signingKey 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = {
  parent: vault
  name: secretName
  tags: {
    purpose: 'certauth capability URLs (HMAC-SHA256); the product adds the key on first use'
  }
  properties: {
    // Not a key and not secret: the product skips it (disabled, and not 32 bytes of base64url).
    value: 'placeholder'
    contentType: 'text/plain; certauth placeholder, not a key'
    attributes: {
      enabled: false
    }
  }
  // checkov:skip=CKV_AZURE_41:the disabled placeholder version never signs; the product's own versions are rotated by adding a version (an expiry would end every signed URL at once)
}

output secretName string = signingKey.name
