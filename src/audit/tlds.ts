// Top-level domains that resolve on the public internet (pure data). A name under any other last
// label (`otel-collector.monitoring`, `db.prod.lan`) cannot be reached from the internet: it is a
// cluster-local `service.namespace` or a private zone. Every two-letter label counts as a country
// code; the generic ones below are those in real use (and the documentation names example, test
// and invalid, which stand for "somewhere outside" in examples and tests).

const GENERIC = new Set(
  `com net org info biz name pro mobi asia tel travel jobs museum aero coop int edu gov mil arpa
  io ai app dev cloud page run services systems network tools software digital host link click email store shop
  live world today news media studio works zone global company solutions tech online site xyz top club vip icu
  blog art design fun space website wiki team work group agency academy africa amsterdam audio auto bank bar
  berlin best bid bike bio black blue book build business buzz cafe camp capital care cards careers cash center
  chat city clinic codes coffee college community consulting cool dance directory dog domains download earth
  education energy engineering enterprises events exchange expert express farm finance fit fitness foundation
  free fund games garden gives glass gmbh gold golf graphics green guide guru health help hosting house how inc
  industries institute insure international kim land law legal life limited llc london love ltd management
  market marketing menu moe money movie nyc one ooo paris partners party pet photo photography photos pics pink
  place plus press productions properties pub quest red rent report rest review reviews rocks sale school
  science social stream style support surf technology tips town toys trade training tube university uno vegas
  ventures video vision wang watch win wtf xxx yoga zip mov ninja lol fyi eco gay ink kids llp ltda moda nexus
  ong onl porn radio realty rip rsvp sex ski soy sucks tattoo tax tienda tokyo vin vote voto wed wine yokohama
  amazon apple google microsoft windows azure aws goog youtube gmail android chrome office skype xbox bing
  cloudflare github gitlab docker oracle ibm intel cisco dell hp sony samsung nvidia meta facebook
  accountant accountants actor adult airforce apartments army associates attorney auction band bargains beer
  bet bingo boutique broker builders cab camera capetown car cards casa casino catering cc charity cheap church
  claims cleaning clothing coach computer condos construction contractors credit creditcard cricket cruises
  dating deals degree delivery democrat dental dentist diamonds diet discount doctor engineer equipment estate
  exposed fail fans fashion film financial fish fishing flights florist football forsale furniture futbol gallery
  gift gifts gratis gripe guitars hamburg haus healthcare hiphop hockey holdings holiday horse hospital immo
  immobilien insurance investments jewelry juegos kaufen kitchen koeln lawyer lease lgbt lighting limo loans
  luxury maison makeup market mba media memorial moscow mortgage motorcycles navy nrw observer organic
  partners pharmacy physio pictures pizza plumbing poker promo qpon racing recipes rehab reise reisen rentals
  repair republican restaurant rich rodeo run salon sarl schule scot select shiksha shoes singles soccer
  software solar srl supplies supply surgery swiss sydney systems taxi tennis theater tickets tires tours
  town trading tv university vacations vet viajes villas vodka voyage wales watches webcam wedding whoswho
  wien works yachts zuerich bayern cymru eus gal quebec nagoya osaka kyoto okinawa ruhr saarland tirol vlaanderen
  example test invalid`
    .split(/\s+/)
    .filter((t) => t !== ''),
);

/** Does `label` (the last label of a name, lowercase) resolve on the public internet? */
export function isPublicTld(label: string): boolean {
  if (/^[a-z]{2}$/.test(label)) return true;
  if (label.startsWith('xn--')) return true;
  return GENERIC.has(label);
}
