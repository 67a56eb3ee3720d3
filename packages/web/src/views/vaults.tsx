/** The vaults list: the personal vaults and each organisation's. */

/** The landing view once signed in. */
export function VaultsView() {
  return (
    <section aria-labelledby="vaults-heading">
      <h1 id="vaults-heading">Vaults</h1>
      <p>Your vaults will be listed here.</p>
    </section>
  );
}
